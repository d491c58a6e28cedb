#!/usr/bin/env bash
# Overload from outside the server's process (issue 18, item 2): wrk offers
# creates at 16 connections (the capacity), then floods CONNS connections for
# FLOOD, then 16 connections again (is the capacity back within 5 s?), and
# prints one JSON object: goodput during the flood as a share of the
# capacity, 503s without Retry-After, and hmp's RSS before, at the end of
# and after the flood. Arguments after the options go to `hmp serve`.
#
#   scripts/overload.sh [--conns 1000] [--flood 20s] [--base 10s] [-- serve flags]
set -euo pipefail
cd "$(dirname "$0")/.."
conns=1000 flood=20s base=10s
while [ $# -gt 0 ]; do
  case "$1" in
    --conns) conns=$2; shift 2 ;;
    --flood) flood=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--conns N] [--flood D] [--base D] [-- serve flags]" >&2; exit 2 ;;
  esac
done
. scripts/serve.sh
need wrk jq curl
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

dir= pid=
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null || true; [ -z "$dir" ] || rm -rf "$dir"' EXIT
start_hmp overload "$@"

HMP_TOKEN=$(curl -fs -X POST "$url/v1/auth/signup" -H 'Content-Type: application/json' \
  -d '{"orgName":"Overload","email":"overload@example.test","password":"overload-pass","displayName":"Flood"}' | jq -er .accessToken)
HMP_PROPERTY=$(curl -fs -X POST "$url/v1/properties" -H 'Content-Type: application/json' \
  -H "Authorization: Bearer $HMP_TOKEN" -d '{"name":"Flood Inn","type":"hotel"}' | jq -er .id)
export HMP_TOKEN HMP_PROPERTY

rss() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' /proc/$pid/status; }
offer() { # connections duration
  wrk -t2 -c"$1" -d"$2" --timeout 10s -s scripts/overload/creates.lua "$url/v1/finance/revenues" | tail -n 1
}

offer 16 3s >/dev/null # warm the pool and the caches
echo "capacity: 16 connections for $base" >&2
capacity=$(offer 16 "$base")
rssStart=$(rss)
echo "flood: $conns connections for $flood" >&2
during=$(offer "$conns" "$flood")
rssEnd=$(rss)
echo "after: 16 connections for 5s" >&2
after=$(offer 16 5s)
sleep 5
rssAfter=$(rss)

jq -n --argjson capacity "$capacity" --argjson flood "$during" --argjson after "$after" \
  --argjson conns "$conns" --argjson rssStart "$rssStart" --argjson rssEnd "$rssEnd" --argjson rssAfter "$rssAfter" '{
  connections: $conns, capacity: $capacity, flood: $flood, after: $after,
  goodput: ($flood.okPerSecond / $capacity.okPerSecond),
  recovered: ($after.okPerSecond / $capacity.okPerSecond),
  rssMiB: {start: $rssStart, end: $rssEnd, after: $rssAfter},
  rssEndRatio: ($rssEnd / $rssStart), rssAfterRatio: ($rssAfter / $rssStart)}'
