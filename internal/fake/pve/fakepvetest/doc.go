// Package fakepvetest installs internal/fake/pve as pct and qm for a test, with
// a fresh state folder and argv log, and reads the log back.
//
// A package whose TestMain calls Main needs no build: its test binary is
// linked as pct and qm and, started under those names, runs the fake.
// Otherwise Install builds hack/fakepve once per test process (go build, so
// a Go toolchain must be on PATH, as it is under go test) and copies the
// binary into each test's temp folder. It does not start or drive anything
// itself.
package fakepvetest
