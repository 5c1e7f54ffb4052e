#!/bin/sh
# Application shared by the vLLM guests (941, 950): serve vllm_model on vllm_port.
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
model=$(field vllm_model)
port=$(field vllm_port)
echo "app[$name]: would write /etc/systemd/system/vllm.service: vllm serve ${model:-<vllm_model unset>} --host 0.0.0.0 --port ${port:-8000}"
echo "app[$name]: would systemctl enable --now vllm and wait for http://localhost:${port:-8000}/health"
