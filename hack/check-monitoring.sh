#!/usr/bin/env bash
# Check the monitoring assets: Prometheus rules (syntax + unit tests), the example scrape
# config and the Grafana dashboard JSON.
#
# Installs Debian's `prometheus` package (which ships promtool) when promtool is missing; that
# needs root and apt. Set PROMTOOL=/path/to/promtool to use another binary.
set -euo pipefail
export GOTOOLCHAIN=go1.27.3

cd "$(dirname "${BASH_SOURCE[0]}")/.."

find_promtool() {
	if [[ -n "${PROMTOOL:-}" ]]; then
		echo "$PROMTOOL"
		return 0
	fi
	if command -v promtool >/dev/null 2>&1; then
		command -v promtool
		return 0
	fi
	local p
	for p in /usr/bin/promtool /usr/local/bin/promtool /usr/sbin/promtool; do
		if [[ -x "$p" ]]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

if ! promtool="$(find_promtool)"; then
	echo "promtool not found; installing Debian package prometheus" >&2
	if [[ "$(id -u)" -ne 0 ]]; then
		echo "error: need root to apt-get install prometheus (or set PROMTOOL=/path/to/promtool)" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq prometheus >/dev/null
	if ! promtool="$(find_promtool)"; then
		echo "error: prometheus package installed but promtool not found (tried PATH, /usr/bin, /usr/local/bin)" >&2
		exit 1
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
