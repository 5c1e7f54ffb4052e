#!/usr/bin/env bash
# Puts Debian's prometheus and promtool binaries into .cache/prometheus/usr/bin
# for the monitoring checks, without installing anything: `apt-get download`
# fetches the package into the cache and `dpkg-deb -x` unpacks it there. No
# service is installed or started, nothing outside the cache changes.
#
# When that is impossible (no apt, no package lists, no network) it says so
# and exits 0, and the checks that need the binaries skip with a message;
# with CI=true it fails instead, because CI must run every check.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

cache="${PHOENIX_CACHE:-.cache}/prometheus"
bin="$cache/usr/bin"

if [[ -x "$bin/prometheus" && -x "$bin/promtool" ]]; then
	exit 0
fi

unavailable() {
	if [[ "${CI:-}" == "true" ]]; then
		echo "error: cannot get Debian's prometheus package into $cache: $*" >&2
		exit 1
	fi
	echo "SKIP: cannot get Debian's prometheus package into $cache ($*); the checks that run promtool or Prometheus will skip" >&2
	exit 0
}

command -v apt-get >/dev/null 2>&1 || unavailable "no apt-get"
command -v dpkg-deb >/dev/null 2>&1 || unavailable "no dpkg-deb"

mkdir -p "$(dirname "$cache")"
tmp="$(mktemp -d "$(dirname "$cache")/.prometheus.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

echo "fetching Debian's prometheus package into $cache (once; not installed)" >&2
# Root's apt drops to the _apt user to download, which cannot write here.
if ! (cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root prometheus >&2); then
	unavailable "apt-get download prometheus failed; as root, run apt-get update first"
fi
deb=("$tmp"/prometheus_*.deb)
dpkg-deb -x "${deb[0]}" "$tmp/root"
[[ -x "$tmp/root/usr/bin/prometheus" && -x "$tmp/root/usr/bin/promtool" ]] ||
	unavailable "${deb[0]##*/} has no usr/bin/prometheus and usr/bin/promtool"
rm -rf "$cache"
mv "$tmp/root" "$cache"
echo "$("$bin/prometheus" --version 2>&1 | head -n1) in $bin" >&2
