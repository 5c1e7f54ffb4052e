// Package ui draws phoenix's dependency graph and serves the live status
// page.
//
// The picture is laid out in Go, with no external library and no browser
// code: a Sugiyama-style layered layout (layers by longest path, long edges
// broken by dummy nodes, crossings reduced by barycenter sweeps, x positions
// by isotonic regression so that nodes sit over what they need without
// overlapping) rendered as one self-contained SVG. All arithmetic is on
// integers, so the same graph gives the same bytes on every machine; the
// golden files in testdata pin that. `phoenix graph --format svg` and the
// status page draw the same picture.
//
// The page (NewHandler) is plain HTML, CSS and JavaScript embedded in the
// binary: no CDN, no build step. It reads the desired state, the status
// records and the live host through the State interface and pushes changes
// to the browser with server-sent events. Its one mutating endpoint asks for
// a converge through the Converger interface (the same annotation hand-off
// as `phoenix converge`); it is off unless enabled, and then needs a bearer
// token from a 0600 file in the state dir and a same-origin request.
//
// It does not reconcile anything, keep state of its own, or decide what a
// converge does: the controller does.
package ui
