#!/bin/sh
# Application for the gateway (953): nginx reverse proxy with TLS in front of the lab.
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
echo "app[$name]: would install nginx and certbot"
echo "app[$name]: would write sites for qdrant (10.10.0.152:6333), n8n (10.10.0.154:5678), open-webui (10.10.0.156:8080), vllm (10.10.0.141:8000, 10.10.0.150:8000)"
echo "app[$name]: would nginx -t && systemctl reload nginx"
