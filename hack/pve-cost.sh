#!/usr/bin/env bash
# Process cost of the pve backend on a provisioned host: how many pct/qm
# processes phoenix starts, and how long it takes, when every call of the
# fake pct/qm costs DELAY (0.25s by default, about what a real pct/qm
# Perl process costs). Provisions the example lab (16 guests; 956 depends
# on a chain of 9 containers) on the fake with no delay, then measures with
# the delay and prints a table of the rows of docs/benchmarks.md.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
cd "$(dirname "$0")/.."
DELAY=${DELAY:-250ms}
RUNS=${RUNS:-5}
RESYNC=${RESYNC:-3s}
PASSES=${PASSES:-3}
LAB=config/examples/lab
work=$(mktemp -d)
trap 'if [ -n "${ctl:-}" ]; then kill "$ctl" 2>/dev/null || true; fi; rm -rf "$work"' EXIT
mkdir -p "$work/bin"
go build -o "$work/phoenix" ./cmd/phoenix
go build -o "$work/bin/fakepve" ./hack/fakepve
ln -s fakepve "$work/bin/pct"
ln -s fakepve "$work/bin/qm"
scripts="$work/scripts"
cp -r config/examples/scripts "$scripts"
chmod -R go-w "$scripts"

export PATH="$work/bin:$PATH" FAKEPVE_STATE="$work/fake" FAKEPVE_LOG="$work/argv.log"
flags=(--config-dir "$LAB" --scripts-dir "$scripts" --state-dir "$work/state"
  --backend pve --pve-etc "$work/fake/etc/pve" --pve-lxc-lock-dir "$work/fake/run/lock/lxc")
p() { "$work/phoenix" "${flags[@]}" "$@"; }
calls() { if [ -f "$FAKEPVE_LOG" ]; then wc -l <"$FAKEPVE_LOG"; else echo 0; fi; }
# verbs VERB... counts the logged calls since line $1 whose verb is one of
# the rest ("guest cmd" and "guest exec" are "guest").
verbs() {
  local from=$1; shift
  tail -n +"$((from + 1))" "$FAKEPVE_LOG" |
    sed -E 's/.*"argv":\["([^"]*)".*/\1/' | grep -cxF -f <(printf '%s\n' "$@") || true
}
reads=(list status config listsnapshot guest)
mutations=(create clone set resize start stop shutdown destroy snapshot template)

p LetsGo >/dev/null
export FAKEPVE_DELAY=$DELAY

# median wall time in ms of RUNS runs of a command
median_ms() {
  for _ in $(seq "$RUNS"); do
    s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N)
    echo $(((e - s) / 1000000))
  done | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}
version_ms=$(median_ms "$work/phoenix" --version)
n0=$(calls)
p create 956 --dry-run >/dev/null
n1=$(calls)
dry_procs=$((n1 - n0))
dry_ms=$(median_ms p create 956 --dry-run)
n1=$(calls)

p create 956 >/dev/null
n2=$(calls)
noop_reads=$(verbs "$n1" "${reads[@]}")
noop_scripts=$(verbs "$n1" push exec)
noop_mut=$(verbs "$n1" "${mutations[@]}")

"$work/phoenix" "${flags[@]}" controller --resync "$RESYNC" --metrics-addr "" >"$work/controller.log" 2>&1 &
ctl=$!
sleep "$(awk -v r="${RESYNC%s}" 'BEGIN {print r + 2}')" # the first pass, which may run scripts
n3=$(calls)
sleep "$(awk -v r="${RESYNC%s}" -v n="$PASSES" 'BEGIN {print r * n}')"
n4=$(calls)
kill "$ctl"; wait "$ctl" 2>/dev/null || true; ctl=
ctl_all=$((n4 - n3))
ctl_mut=$(verbs "$n3" "${mutations[@]}")
per_pass=$(awk -v a="$ctl_all" -v n="$PASSES" 'BEGIN {printf "%.1f", a / n}')

printf 'fake pct/qm: %s per call; example lab, 16 guests, 956 on a chain of 9 containers; load average %s\n\n' \
  "$DELAY" "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
printf '| row | measured | target |\n|---|---|---|\n'
printf '| pct/qm processes, dry-run `create 956`, all existing | %d | <= 2 |\n' "$dry_procs"
printf '| wall time of that dry run, median of %d (phoenix --version alone: %d ms) | %d ms | <= 1000 ms |\n' "$RUNS" "$version_ms" "$dry_ms"
printf '| read processes of a no-op `create 956` (its scripts ran %d more) | %d | <= 2 |\n' "$noop_scripts" "$noop_reads"
printf '| mutating processes of that no-op create | %d | 0 |\n' "$noop_mut"
printf '| controller steady state, processes per pass (%d passes at --resync %s) | %s | <= 2 |\n' "$PASSES" "$RESYNC" "$per_pass"
printf '| mutating processes in steady state | %d | 0 |\n' "$ctl_mut"
