#!/bin/sh
# Health check example: runs the guest's health_check.command until it succeeds.
# Example only: prints what it would do. $1 is the path of the guest's JSON spec
# (all of its fields, unknown ones included).
set -eu
spec=${1:?usage: $0 SPEC.json}
[ -r "$spec" ] || { echo "$0: cannot read $spec" >&2; exit 2; }

# field KEY: the first string or number value of KEY in the spec (jq when present).
field() {
	if command -v jq >/dev/null 2>&1; then
		jq -r --arg k "$1" 'first(.. | objects | select(has($k)) | .[$k]) // empty | tostring' "$spec"
	else
		grep -oE "\"$1\"[[:space:]]*:[[:space:]]*(\"[^\"]*|[-0-9.]+)" "$spec" | head -n 1 |
			sed 's/^"[^"]*"[[:space:]]*:[[:space:]]*"\{0,1\}//'
	fi
}
name=$(field name)
cmd=$(field command)
retries=$(field retries)
interval=$(field interval)
echo "health[$name]: would run '${cmd:-true}' up to ${retries:-3} times, ${interval:-5}s apart, and fail if it never exits 0"
