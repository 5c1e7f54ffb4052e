// Package hosttest is the contract every hypervisor.Host backend obeys, as
// one test suite: Run drives a fresh host through it, and each backend runs
// it against its strictest stand-in (the sim itself, the pve backend on the
// fake pct/qm, the pve-api backend on the fake cluster). A rule the suite
// checks holds on every backend, so the workflows can rely on it whichever
// one they drive.
package hosttest
