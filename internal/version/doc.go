// Package version holds what the binary knows about its own build: the
// version from git tags, the commit, the build date and the Go version.
// The Makefile sets the first three with -ldflags -X; a plain `go build`
// or `go install` falls back to the VCS stamp Go records in the binary.
package version
