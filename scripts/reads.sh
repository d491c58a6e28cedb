#!/usr/bin/env bash
# Cached reads from outside the server's process (issue 18, item 1): wrk
# reads one hot daily report from hmp and the same bytes from a bare
# net/http endpoint (scripts/bare), alternated ROUNDS times in one run, and
# prints one JSON object with each run's requests/s and p99 and the ratio
# of the sums. With --perf FILE, `perf record` samples hmp during its
# first run (perf report -i FILE shows where the time goes). Arguments
# after the options go to `hmp serve`.
#
#   scripts/reads.sh [--conns 32] [--duration 8s] [--rounds 2] [--perf FILE] [-- serve flags]
set -euo pipefail
cd "$(dirname "$0")/.."
conns=32 duration=8s rounds=2 perfout=
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) conns=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --perf) perfout=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--conns N] [--duration D] [--rounds N] [--perf FILE] [-- serve flags]" >&2; exit 2 ;;
  esac
done
. scripts/serve.sh
need wrk jq curl

dir= pid= barepid=
trap 'kill $pid $barepid 2>/dev/null; wait $pid $barepid 2>/dev/null || true; [ -z "$dir" ] || rm -rf "$dir"' EXIT
start_hmp reads "$@"
go build -o "$dir/bare" ./scripts/bare
bareport=$(freeport)

token=$(curl -fs -X POST "$url/v1/auth/signup" -H 'Content-Type: application/json' \
  -d '{"orgName":"Reads","email":"reads@example.test","password":"reads-password","displayName":"Reader"}' | jq -er .accessToken)
auth="Authorization: Bearer $token"
prop=$(curl -fs -X POST "$url/v1/properties" -H 'Content-Type: application/json' -H "$auth" \
  -d '{"name":"Reads Inn","type":"hotel"}' | jq -er .id)
curl -fs -D "$dir/created.h" -o "$dir/created.json" -X POST "$url/v1/finance/revenues" -H 'Content-Type: application/json' -H "$auth" \
  -d "{\"propertyId\":\"$prop\",\"source\":\"room\",\"amountCents\":12345,\"paymentMode\":\"cash\",\"occurredAt\":\"$(date -u +%FT%TZ)\"}"
consistency=$(tr -d '\r' <"$dir/created.h" | awk -F': ' 'tolower($1)=="x-consistency-token" {print $2}')
# The business date is the property's calendar date, not UTC's.
read_url="$url/v1/reports/daily-report?propertyId=$prop&date=$(jq -er .businessDate "$dir/created.json")"
# The write's token waits for the projection; the tokenless reads after it are hits.
curl -fs "$read_url" -H "$auth" -H "X-Consistency-Token: $consistency" >/dev/null
curl -fs "$read_url" -H "$auth" >"$dir/body.json"
jq -e '.cashReceivedCents == 12345' "$dir/body.json" >/dev/null || { echo "$0: the report does not hold the write: $(cat "$dir/body.json")" >&2; exit 1; }
"$dir/bare" -addr "127.0.0.1:$bareport" -file "$dir/body.json" &
barepid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$bareport/" >/dev/null 2>&1 && break; sleep 0.05; done

# run URL [header]: one wrk run as {rps, p99Ms}.
run() {
  local out
  if [ -n "${2:-}" ]; then out=$(wrk -t2 -c"$conns" -d"$duration" --latency -H "$2" "$1"); else out=$(wrk -t2 -c"$conns" -d"$duration" --latency "$1"); fi
  local rps p99
  rps=$(printf '%s\n' "$out" | awk '/^Requests\/sec/ {print $2}')
  p99=$(printf '%s\n' "$out" | awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); v/=1000} else if (v ~ /ms$/) {sub(/ms$/,"",v)} else if (v ~ /s$/) {sub(/s$/,"",v); v*=1000}; print v}')
  if printf '%s\n' "$out" | grep -q "Non-2xx"; then echo "$0: non-2xx answers: $out" >&2; exit 1; fi
  jq -n --argjson rps "$rps" --argjson p99 "$p99" '{rps: $rps, p99Ms: $p99}'
}

run "$read_url" "$auth" >/dev/null # warm
hmp_runs=() bare_runs=()
for i in $(seq "$rounds"); do
  if [ "$i" = 1 ] && [ -n "$perfout" ]; then
    perf record -F 999 -g -o "$perfout" -p "$pid" -- sleep "${duration%s}" >/dev/null 2>&1 &
    perfpid=$!
    hmp_runs+=("$(run "$read_url" "$auth")")
    wait $perfpid || true
  else
    hmp_runs+=("$(run "$read_url" "$auth")")
  fi
  bare_runs+=("$(run "http://127.0.0.1:$bareport/")")
done
jq -n --argjson conns "$conns" --arg duration "$duration" \
  --argjson hmp "$(printf '%s\n' "${hmp_runs[@]}" | jq -s .)" --argjson bare "$(printf '%s\n' "${bare_runs[@]}" | jq -s .)" '{
  connections: $conns, duration: $duration, hmp: $hmp, bare: $bare,
  ratio: (([$hmp[].rps] | add) / ([$bare[].rps] | add))}'
