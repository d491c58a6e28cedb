#!/bin/sh
# Partitioned vs unpartitioned, side by side: seeds the same data set twice
# (hmp seed --partitions -1 and --partitions P), runs the same mixed load
# against each (hmp loadtest mixed --data), and prints the daily report's
# p99 and the write throughput of both with their ratio.
#
#   scripts/partitions-compare.sh [ORGS [DURATION [CLIENTS [PARTITIONS [DIR]]]]]
#   scripts/partitions-compare.sh 1000000 2m 64 16 /var/tmp/hmp-partitions
#
# Data folders are kept under DIR and reused by a second run (the seed of a
# million organizations takes a while); delete DIR to start over.
set -eu
ORGS=${1:-10000}
DURATION=${2:-60s}
CLIENTS=${3:-64}
PARTS=${4:-16}
DIR=${5:-/var/tmp/hmp-partitions-$ORGS}
HMP=${HMP:-go run ./cmd/hmp}
mkdir -p "$DIR"
chmod 755 "$DIR"
for layout in unpartitioned partitioned; do
	data="$DIR/$layout"
	p=-1
	[ "$layout" = partitioned ] && p=$PARTS
	if [ ! -f "$data/seed.json" ]; then
		$HMP seed --orgs "$ORGS" --partitions "$p" --data-dir "$data" --progress lines --log-level warn
	fi
	$HMP partitions --data-dir "$data" --log-level warn || true
	# Back to back, the second run's start can meet the first one's
	# shutdown on a busy machine: let it settle.
	sleep 10
	$HMP loadtest mixed --orgs "$ORGS" --data "$data" --duration "$DURATION" --clients "$CLIENTS" \
		--json "$DIR/$layout.json" --log-level warn
done
jq -rn --slurpfile u "$DIR/unpartitioned.json" --slurpfile p "$DIR/partitioned.json" '
  def op(r; n): (r.profiles[0].ops[] | select(.name == n));
  def row(name; a; b): "\(name)\t\(a)\t\(b)\t\(if a == 0 then "-" else ((b / a * 100 | round) / 100) end)";
  "measure\tunpartitioned\tpartitioned\tpartitioned/unpartitioned",
  row("daily_report p99 ms"; op($u[0]; "daily_report").p99Ms; op($p[0]; "daily_report").p99Ms),
  row("writes ok/s"; $u[0].profiles[0].writes.throughput; $p[0].profiles[0].writes.throughput),
  row("writes p99 ms"; $u[0].profiles[0].writes.p99Ms; $p[0].profiles[0].writes.p99Ms),
  row("all ok/s"; $u[0].profiles[0].all.throughput; $p[0].profiles[0].all.throughput)' | column -t -s "$(printf '\t')"
