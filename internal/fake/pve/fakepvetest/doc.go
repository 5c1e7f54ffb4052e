// Package fakepvetest installs internal/fake/pve as pct and qm for a test, with
// a fresh state folder and argv log, and reads the log back.
//
// The test binary itself plays the fake: a package's TestMain calls Main,
// Install links the test binary as pct and qm, and started under those names
// it runs the fake for that one command. No test builds or runs the go tool.
// It does not start or drive anything itself.
package fakepvetest
