#!/usr/bin/env bash
# Check the monitoring assets: Prometheus rules (syntax + unit tests), the example scrape
# config and the Grafana dashboard JSON.
#
# promtool comes from $PROMTOOL, else from Debian's package unpacked into .cache/prometheus by
# hack/prometheus-tools.sh (nothing is installed), else from PATH. Without one the checks are
# skipped with a message, and fail under CI=true.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3

cd "$(dirname "${BASH_SOURCE[0]}")/.."

find_promtool() {
	local p
	for p in "${PROMTOOL:-}" "${PHOENIX_CACHE:-.cache}/prometheus/usr/bin/promtool" "$(command -v promtool 2>/dev/null || true)"; do
		if [[ -n "$p" && -x "$p" ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

if ! promtool="$(find_promtool)"; then
	bash hack/prometheus-tools.sh
	if ! promtool="$(find_promtool)"; then
		if [[ "${CI:-}" == "true" ]]; then
			echo "error: no promtool (set PROMTOOL or let hack/prometheus-tools.sh fetch it)" >&2
			exit 1
		fi
		echo "SKIP: no promtool; rules, rule tests and scrape config NOT checked (set PROMTOOL=/path/to/promtool)" >&2
		exit 0
	fi
fi

echo "using $("$promtool" --version 2>&1 | head -n1) ($promtool)"

"$promtool" check rules config/prometheus/phoenix-rules.yml
"$promtool" test rules config/prometheus/phoenix-rules.test.yml
"$promtool" check config config/prometheus/scrape.yml

if command -v python3 >/dev/null 2>&1; then
	python3 -m json.tool config/grafana/phoenix-dashboard.json >/dev/null
	echo "config/grafana/phoenix-dashboard.json: valid JSON"
elif command -v jq >/dev/null 2>&1; then
	jq empty config/grafana/phoenix-dashboard.json
	echo "config/grafana/phoenix-dashboard.json: valid JSON"
fi

echo "monitoring assets OK"
