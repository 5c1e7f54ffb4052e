#!/usr/bin/env bash
# Measure the controller on a lab: time from start to /readyz (the first full
# sync), resident memory once ready, and again after a resync pass.
#
#   hack/controller-scale.sh                      # the example lab
#   hack/controller-scale.sh 10000                # a generated 10,000-guest lab
#   WORKERS=8 SIM_LATENCY=0 hack/controller-scale.sh 10000
#   PHOENIX_BIN=/path/to/phoenix hack/controller-scale.sh  # skip the build
#
# Uses the sim backend in a fresh temp state dir; needs curl. On ext4 without
# a journal, file creation skips (and scans past) inodes freed in the last
# 60 s, up to 6 minutes while their inode table block is not written back:
# a run started soon after removing an earlier run's state dir pays for its
# 10,000 inodes. Compare builds in alternate runs (docs/benchmarks.md).
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
cd "$(dirname "${BASH_SOURCE[0]}")/.."

n="${1:-}"
workers="${WORKERS:-4}"
addr="${ADDR:-127.0.0.1:19464}"
work="$(mktemp -d)"
pid=""
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

if [[ -n "${PHOENIX_BIN:-}" ]]; then
	cp "$PHOENIX_BIN" "$work/phoenix"
else
	go build -o "$work/phoenix" ./cmd/phoenix
fi
if [[ -n "$n" ]]; then
	cfg="$work/lab"
	go run ./hack/genlab -n "$n" -out "$cfg" >/dev/null
else
	cfg=config/examples/lab
fi

metric() { curl -fsS "http://$addr/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

start=$(date +%s.%N)
"$work/phoenix" --config-dir "$cfg" --state-dir "$work/state" --backend sim \
	--sim-latency "${SIM_LATENCY:-0}" controller --workers "$workers" --metrics-addr "$addr" \
	--resync 0 2>"$work/log" &
pid=$!
until curl -fsS "http://$addr/readyz" >/dev/null 2>&1; do
	if ! kill -0 "$pid" 2>/dev/null; then
		echo "controller exited:" >&2
		tail -20 "$work/log" >&2
		exit 1
	fi
	sleep 0.2
done
ready=$(date +%s.%N)
guests=$(curl -fsS "http://$addr/metrics" | awk '$1 ~ /^phoenix_guests/ { s += $2 } END { print s }')
printf 'guests:                   %s\n' "$guests"
printf 'workers:                  %s\n' "$workers"
printf 'time to ready:            %ss\n' "$(awk -v a="$start" -v b="$ready" 'BEGIN { printf "%.1f", b - a }')"
mib() { awk -v v="$1" 'BEGIN { printf "%.1f MiB", v / 1048576 }'; }
printf 'RSS when ready:           %s\n' "$(mib "$(metric process_resident_memory_bytes)")"
printf 'Go heap in use:           %s\n' "$(mib "$(metric go_memstats_heap_inuse_bytes)")"
printf 'reconciles (success):     %s\n' "$(curl -fsS "http://$addr/metrics" | awk '$1 ~ /^phoenix_reconcile_total\{.*success/ { s += $2 } END { print s }')"
printf 'reconciles (error):       %s\n' "$(curl -fsS "http://$addr/metrics" | awk '$1 ~ /^phoenix_reconcile_total\{.*error/ { s += $2 } END { print s }')"
# utime and stime, fields 14 and 15 of /proc/<pid>/stat (after the
# command name, which may hold spaces), in clock ticks.
printf 'controller CPU when ready: %s\n' "$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f s user + %.1f s sys", $12 / hz, $13 / hz }' "/proc/$pid/stat")"
kill -TERM "$pid"
wait "$pid" && echo "stopped on SIGTERM with exit 0"
