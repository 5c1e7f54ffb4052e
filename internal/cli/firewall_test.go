package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The upstream files on the pve backend (the fake pct/qm): create writes
// each guest's rules to <pve-etc>/firewall/<id>.fw as pve-firewall reads
// them (the golden file of internal/pvefirewall), a rule edited in the JSON
// shows in diff and --dry-run as a firewall change, and converge writes it.
func TestFirewall_pveWritesTheUpstreamRules(t *testing.T) {
	o := newOldHost(t, upstreamLab)
	if code, out, errOut := o.run(t, "create", "102"); code != 0 {
		t.Fatalf("create 102: exit %d\n%s\n%s", code, out, errOut)
	}
	etc := pveFakeFlags(t)[1]
	for _, id := range []string{"103", "102"} {
		got, err := os.ReadFile(filepath.Join(etc, "firewall", id+".fw"))
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(filepath.Join("..", "pvefirewall", "testdata", "upstream-"+id+".fw"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s.fw:\n%s\nwant:\n%s", id, got, want)
		}
	}
	if code, out, _ := o.run(t, "diff", "102"); code != 0 {
		t.Errorf("diff right after create: exit %d\n%s", code, out)
	}

	path := filepath.Join(o.etc, "phoenix_lxc_configs.json")
	data, _ := os.ReadFile(path)
	edited := strings.Replace(string(data), "Allow proxy to llamacpp-gpu0 (10.0.0.157)", "llamacpp moved", 1)
	if edited == string(data) {
		t.Fatal("no llamacpp rule of 102 to edit in the upstream file")
	}
	os.WriteFile(path, []byte(edited), 0o600)
	code, out, _ := o.run(t, "diff", "102")
	if code != 1 || !strings.Contains(out, "firewall") {
		t.Errorf("diff after a rule edit: exit %d\n%s", code, out)
	}
	code, out, _ = o.run(t, "converge", "102", "--dry-run")
	if code != 0 || !strings.Contains(out, "firewall") {
		t.Errorf("converge --dry-run: exit %d\n%s", code, out)
	}
	if fw, _ := os.ReadFile(filepath.Join(etc, "firewall", "102.fw")); strings.Contains(string(fw), "llamacpp moved") {
		t.Error("a dry run wrote the firewall")
	}
	if code, out, errOut := o.run(t, "converge", "102"); code != 0 {
		t.Fatalf("converge 102: exit %d\n%s\n%s", code, out, errOut)
	}
	if fw, _ := os.ReadFile(filepath.Join(etc, "firewall", "102.fw")); !strings.Contains(string(fw), "-dport 8081 # llamacpp moved") {
		t.Errorf("102.fw after converge:\n%s", fw)
	}
}
