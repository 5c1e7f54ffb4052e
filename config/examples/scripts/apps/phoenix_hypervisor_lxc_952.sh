#!/bin/sh
# Application for qdrant (952): the Qdrant vector database in Docker.
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
echo "app[$name]: would docker run -d --restart unless-stopped -p 6333:6333 -p 6334:6334 -v /qdrant/storage:/qdrant/storage qdrant/qdrant"
