// Package cli is the phoenix command line: the cobra commands, their flags,
// and the wiring of config, backend, status store and engine. main only
// calls Run, so tests run the whole CLI in-process.
package cli
