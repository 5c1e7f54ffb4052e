// Package gen writes internal/desired's fast-path field tables
// (fields_gen.go) from api.Spec's struct tags and the guest schemas, so that
// a new guest field is one edit to api.Spec and its schema plus
// `go generate ./internal/desired`.
//
// The Go types say how a field decodes (its JSON name, string, integer,
// pointer, list, nested object); the schemas say what the fast path must
// check on the way (minimum, minLength, pattern). A schema keyword the
// generator does not know is an error, not something skipped: a fast path
// more lenient than the schema would accept what the schema refuses.
package gen
