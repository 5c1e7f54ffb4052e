// Package monitoring holds the tests of the monitoring assets beside it
// (../prometheus, ../grafana): they run the controller on the simulated
// host, check every metric name the dashboard and the rules use against
// its /metrics, and run Debian's Prometheus server against it.
//
// It is a module of its own, as node_exporter keeps its mixin, so that
// the PromQL parser (github.com/prometheus/prometheus) is a dependency of
// these tests only and not of phoenix. `make test` and CI run it.
package monitoring
