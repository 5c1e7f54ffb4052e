// Package config holds the files phoenix ships beside its code: the JSON
// Schemas of the configuration files, the example lab and its scripts, the
// Grafana dashboard and the Prometheus rules. The schemas are embedded in
// the binary so that validation needs nothing installed.
package config

import "embed"

// Schemas holds schemas/<standard file name minus .json>.schema.json.
//
//go:embed schemas/*.json
var Schemas embed.FS
