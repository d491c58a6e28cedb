#!/usr/bin/env bash
# Installs what HMP needs to build, run and test, when it is missing:
# Go (checked, not installed); with apt-get: the PostgreSQL server binaries
# and hypopg (index advice), redis-server (the shared cache and rate-limit
# tier in tests), chromium (browser tests of served pages) and prometheus
# (promtool checks the exported alert rules), patroni with etcd-server and
# python3-etcd (the failover topology of internal/ha and 'hmp chaos --ha'),
# wrk and jq (scripts/overload.sh measures from outside the process).
# NATS JetStream runs embedded
# in the hmp binary; nothing to install.
set -euo pipefail

need_go="1.26"
if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go ${need_go}+ is required (https://go.dev/dl/); it is not on PATH" >&2
	exit 1
fi

pg_bin() {
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
			v=$(basename "$(dirname "$d")")
			if [ "${v%%.*}" -ge 15 ] 2>/dev/null; then echo "$v"; return 0; fi
		fi
	done
	return 1
}

missing=()
pgv=$(pg_bin || true)
if [ -z "$pgv" ]; then
	missing+=(postgresql postgresql-contrib)
	pgv=15
fi
if ! ls /usr/share/postgresql/*/extension/hypopg.control >/dev/null 2>&1; then
	missing+=("postgresql-${pgv}-hypopg")
fi
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
# Patroni is the HA manager of the failover tests (docs/operations.md says
# why); Debian's python3-etcd speaks etcd's v2 API, which etcd-server 3.4
# serves with --enable-v2.
command -v patroni >/dev/null 2>&1 || missing+=(patroni)
command -v etcd >/dev/null 2>&1 || missing+=(etcd-server)
dpkg-query -W -f='${Status}' python3-etcd 2>/dev/null | grep -q 'ok installed' || missing+=(python3-etcd)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v jq >/dev/null 2>&1 || missing+=(jq)

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: missing packages: ${missing[*]}; install them (e.g. sudo apt-get install -y ${missing[*]})" >&2
		exit 1
	fi
	echo "deps: installing ${missing[*]} with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# pgbench comes with the server packages; the write benchmark compares
# against it.
exit 0
