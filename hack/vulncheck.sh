#!/usr/bin/env bash
# govulncheck without the internet: the vulnerability database comes from
# the golang.org/x/vulndb module on the Go module proxy, indexed locally.
# Fails on any called vulnerability, the standard library's included (the
# toolchain is pinned with GOTOOLCHAIN; see hack/vulnfilter).
set -euo pipefail
export GOTOOLCHAIN=go1.27.3
cd "$(dirname "$0")/.."
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
VULN_VERSION=${VULN_VERSION:-v1.9.0}
export PATH="$(go env GOPATH)/bin:$PATH"
command -v govulncheck >/dev/null || go install "golang.org/x/vuln/cmd/govulncheck@$VULN_VERSION"
db="${TMPDIR:-/tmp}/phoenix-vulndb-$VULNDB_VERSION"
if [ ! -f "$db/index/db.json" ]; then
  src="$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/.*"Dir": "\(.*\)",/\1/p')"
  go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" -vulns "$src/data/osv" -out "$db.tmp"
  rm -rf "$db" && mv "$db.tmp" "$db"
fi
govulncheck -db "file://$db" -format json ./... | go run ./hack/vulnfilter
