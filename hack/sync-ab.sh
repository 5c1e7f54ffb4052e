#!/usr/bin/env bash
# Compare builds on the controller's first full sync of a generated lab, in
# alternate runs, and print each run and the medians: time from start to
# /readyz, the controller's CPU (user + sys) and resident memory then.
#
#   hack/sync-ab.sh ROUNDS NAME=BINARY [NAME=BINARY...]
#   N=10000 WORKERS=8 STATE_PARENT=/tmp GAP=5 hack/sync-ab.sh 3 main=/tmp/phx-main new=/tmp/phx-new
#   ENV_new='GOMAXPROCS=4' ...    # extra environment for the build named new
#
# Alternating is what makes the figures comparable on a disk whose speed
# depends on what happened before (ext4 without a journal scans past inodes
# freed in the last minutes, docs/benchmarks.md). The state dirs are kept
# under STATE_PARENT/sync-ab.* until the end and removed then, so that no run
# pays for the removal of another's. Sim backend, no latency; needs curl.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
cd "$(dirname "${BASH_SOURCE[0]}")/.."

rounds="${1:?usage: $0 ROUNDS NAME=BINARY...}"
shift
n="${N:-10000}"
workers="${WORKERS:-8}"
gap="${GAP:-5}"
addr="${ADDR:-127.0.0.1:19477}"
keep="$(mktemp -d -p "${STATE_PARENT:-${TMPDIR:-/tmp}}" sync-ab.XXXXXX)"
pid=""
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$keep"' EXIT

lab="$keep/lab"
go run ./hack/genlab -n "$n" -seed 1 -out "$lab" >/dev/null

declare -A times
run() { # name binary
	local name=$1 bin=$2 st envvar extra
	st="$(mktemp -d -p "$keep")"
	envvar="ENV_$name"
	read -r -a extra <<<"${!envvar:-}"
	local start ready
	start=$(date +%s.%N)
	env "${extra[@]}" "$bin" --config-dir "$lab" --state-dir "$st/state" --backend sim --sim-latency 0 \
		controller --workers "$workers" --metrics-addr "$addr" --resync 0 2>"$st/log" &
	pid=$!
	until curl -fsS "http://$addr/readyz" >/dev/null 2>&1; do
		kill -0 "$pid" 2>/dev/null || { tail "$st/log"; exit 1; }
		sleep 0.05
	done
	ready=$(date +%s.%N)
	local secs cpu rss
	secs=$(awk -v a="$start" -v b="$ready" 'BEGIN{printf "%.1f", b-a}')
	cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f + %.1f", $12/hz, $13/hz }' "/proc/$pid/stat")
	rss=$(awk '/VmRSS/{printf "%.0f", $2/1024}' "/proc/$pid/status")
	kill "$pid"
	wait "$pid" || true
	pid=""
	printf '%-12s %5s s   cpu %s s   rss %s MiB   load %s\n' "$name" "$secs" "$cpu" "$rss" "$(cut -d' ' -f1 /proc/loadavg)"
	times[$name]="${times[$name]:-} $secs"
}

for r in $(seq "$rounds"); do
	for spec in "$@"; do
		sleep "$gap"
		run "${spec%%=*}" "${spec#*=}"
	done
done
echo
for spec in "$@"; do
	name=${spec%%=*}
	sorted=$(tr ' ' '\n' <<<"${times[$name]}" | sed '/^$/d' | sort -n | tr '\n' ' ')
	median=$(tr ' ' '\n' <<<"$sorted" | sed '/^$/d' | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')
	printf '%-12s runs: %s  median %s s\n' "$name" "$sorted" "$median"
done
