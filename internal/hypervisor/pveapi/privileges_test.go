package pveapi

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

const privilegesDoc = "../../../docs/proxmox.md"

// The table of privileges in docs/proxmox.md is the one doctor checks
// with: a privilege added to the code and not to the doc (or the other
// way round) fails here.
func TestPrivilegesDoc(t *testing.T) {
	data, err := os.ReadFile(privilegesDoc)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`(?s)(<!-- privileges: [^\n]*-->\n)(.*?)(<!-- end privileges -->)`)
	m := re.FindSubmatchIndex(data)
	if m == nil {
		t.Fatalf("%s has no privileges table between its markers", privilegesDoc)
	}
	got := string(data[m[4]:m[5]])
	want := PrivilegesTable()
	if *update {
		out := string(data[:m[4]]) + want + string(data[m[5]:])
		if err := os.WriteFile(privilegesDoc, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != want {
		t.Errorf("%s's privileges table differs from Privileges (go test -run %s -update rewrites it):\n--- doc\n%s--- code\n%s", privilegesDoc, t.Name(), got, want)
	}
	// Every privilege named in the table is one doctor checks.
	for _, p := range Privileges {
		for _, n := range p.Names {
			if !strings.Contains(got, n) {
				t.Errorf("%s missing from the doc", n)
			}
		}
	}
}
