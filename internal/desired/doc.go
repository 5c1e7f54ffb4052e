// Package desired reads phoenix's desired state from a config directory:
// the three JSON files of the old tool, checked against the embedded JSON
// Schemas (config/schemas) and then semantically (references, cycles, IDs,
// addresses, script names), into an api.Config.
//
// Every problem is reported, each naming file, guest and field, as an
// *api.InvalidError. A Cache (owned by a long-running loader such as the
// controller) remembers each guest's check by its bytes, so a reload only
// re-checks the guests that changed. The fast path (fast.go) decodes and
// checks a guest in one pass and falls back to the schema library on any
// doubt; tests hold the two paths equal. The package never writes.
package desired
