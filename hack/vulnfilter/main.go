// Command vulnfilter reads `govulncheck -format json` on stdin, prints one
// line per vulnerability the code calls, and exits 1 when there is any,
// the Go standard library's included: the toolchain is pinned
// (GOTOOLCHAIN in the Makefile and every script), so a called standard
// library vulnerability is fixed by moving that pin, and CI must say so.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
)

type message struct {
	Finding *struct {
		OSV          string `json:"osv"`
		FixedVersion string `json:"fixed_version"`
		Trace        []struct {
			Module   string `json:"module"`
			Package  string `json:"package"`
			Function string `json:"function"`
		} `json:"trace"`
	} `json:"finding"`
}

func main() {
	dec := json.NewDecoder(os.Stdin)
	type key struct{ osv, module, fixed string }
	called := map[key]bool{}
	for {
		var m message
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			fmt.Fprintln(os.Stderr, "vulnfilter:", err)
			os.Exit(2)
		}
		if m.Finding == nil || len(m.Finding.Trace) == 0 || m.Finding.Trace[0].Function == "" {
			continue // imported or required but never called
		}
		called[key{m.Finding.OSV, m.Finding.Trace[0].Module, m.Finding.FixedVersion}] = true
	}
	var keys []key
	for k := range called {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].osv < keys[j].osv })
	inStdlib := 0
	for _, k := range keys {
		if k.module == "stdlib" {
			inStdlib++
			fmt.Printf("FAIL: %s in the Go standard library, fixed in %s (move GOTOOLCHAIN to it)\n", k.osv, k.fixed)
			continue
		}
		fmt.Printf("FAIL: %s in %s, fixed in %s\n", k.osv, k.module, k.fixed)
	}
	fmt.Printf("%d called vulnerabilities (%d in the standard library)\n", len(keys), inStdlib)
	if len(keys) > 0 {
		os.Exit(1)
	}
}
