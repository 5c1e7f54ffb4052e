#!/usr/bin/env bash
# Compares a no-op `phoenix create 941` on a fully provisioned reference lab
# (sim backend, no latency) with starting the binary (`phoenix --version`).
# Prints a table of medians, min and max over RUNS runs of each.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
cd "$(dirname "$0")/.."
RUNS=${RUNS:-30}
LAB=${LAB:-testdata/reference-lab}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/phoenix" ./cmd/phoenix
p() { "$work/phoenix" --config-dir "$LAB" --state-dir "$work/state" --backend sim "$@"; }
p LetsGo >/dev/null

time_runs() { # prints one duration in microseconds per run
  for _ in $(seq "$RUNS"); do
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    echo $(( (e - s) / 1000 ))
  done
}
stats() { sort -n | awk '{a[NR]=$1} END {printf "%d %d %d\n", a[int((NR+1)/2)], a[1], a[NR]}'; }

read -r vmed vmin vmax < <(time_runs "$work/phoenix" --version | stats)
read -r cmed cmin cmax < <(time_runs p create 941 | stats)
printf '| command | median µs | min µs | max µs |\n|---|---|---|---|\n'
printf '| phoenix --version | %d | %d | %d |\n' "$vmed" "$vmin" "$vmax"
printf '| phoenix create 941 (no-op, provisioned reference lab) | %d | %d | %d |\n' "$cmed" "$cmin" "$cmax"
awk -v c="$cmed" -v v="$vmed" 'BEGIN {printf "ratio create/version (medians): %.2f\n", c / v}'
