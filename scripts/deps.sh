#!/usr/bin/env bash
# Installs what HMP needs to build, run and test, when it is missing:
# Go (checked, not installed) and the PostgreSQL server binaries (apt-get).
# NATS JetStream runs embedded in the hmp binary; nothing to install.
set -euo pipefail

need_go="1.26"
if ! command -v go >/dev/null 2>&1; then
	echo "deps: Go ${need_go}+ is required (https://go.dev/dl/); it is not on PATH" >&2
	exit 1
fi

have_pg() {
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/postgres" ]; then
			v=$(basename "$(dirname "$d")")
			if [ "${v%%.*}" -ge 15 ] 2>/dev/null; then return 0; fi
		fi
	done
	command -v initdb >/dev/null 2>&1 && command -v postgres >/dev/null 2>&1
}

if ! have_pg; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "deps: PostgreSQL 15+ server binaries are missing; install them (e.g. sudo apt-get install -y postgresql)" >&2
		exit 1
	fi
	echo "deps: installing PostgreSQL server packages with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq postgresql postgresql-contrib >/dev/null
fi

# pgbench comes with the server packages; the write benchmark compares
# against it.
exit 0
