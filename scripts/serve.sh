# Sourced by the measuring scripts (overload.sh, reads.sh): the tools they
# need, a free port, and hmp serving a fresh embedded default.

# need TOOL...: exit 2 naming the first missing tool.
need() {
  for tool in "$@"; do
    command -v "$tool" >/dev/null || { echo "$0: $tool is missing (scripts/deps.sh installs it)" >&2; exit 2; }
  done
}

freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_hmp NAME [serve flags]: builds hmp (or copies $HMP_BIN) into a new
# folder $dir, serves a fresh embedded default on a free loopback port and
# waits until it is ready. Sets dir, pid and url; the caller's EXIT trap
# stops it (stop_hmp) and removes $dir.
start_hmp() {
  local name=$1
  shift
  dir=$(mktemp -d "/tmp/hmp-$name.XXXXXX")
  chmod 755 "$dir"
  if [ -n "${HMP_BIN:-}" ]; then cp "$HMP_BIN" "$dir/hmp"; else go build -o "$dir/hmp" ./cmd/hmp; fi
  local port
  port=$(freeport)
  url=http://127.0.0.1:$port
  "$dir/hmp" serve --data-dir "$dir/data" --http-addr "127.0.0.1:$port" --log-level warn "$@" >"$dir/serve.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do
    curl -fs "$url/readyz" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$dir/serve.log" >&2; exit 1; }
    sleep 0.1
  done
  echo "$0: hmp not ready within 60 s" >&2
  exit 1
}
