// Package metrics defines the controller's Prometheus metrics on a registry
// of its own (never the global default one): the phoenix_* series, the
// client-go workqueue_* series under controller-runtime's names, and the Go
// and process collectors.
//
// It only defines and registers metrics; the controller decides when to
// count. Names, labels and help texts are the contract of
// config/prometheus/phoenix-rules.yml and config/grafana; change them
// together.
package metrics
