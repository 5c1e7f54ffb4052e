package guest

import "testing"

func TestEditRaw(t *testing.T) {
	conf := "arch: amd64\nlxc.apparmor.profile: generated\nmemory: 512\nlxc.mount.entry: /a a\nlxc.mount.entry: /b b\n\n[snap]\nlxc.apparmor.profile: generated\n"
	cases := []struct {
		name   string
		values map[string]string
		want   string
	}{
		{"replace in place", map[string]string{"lxc.apparmor.profile": "unconfined"}, "arch: amd64\nlxc.apparmor.profile: unconfined\nmemory: 512\nlxc.mount.entry: /a a\nlxc.mount.entry: /b b\n\n[snap]\nlxc.apparmor.profile: generated\n"},
		{"delete all lines of a key", map[string]string{"lxc.mount.entry": ""}, "arch: amd64\nlxc.apparmor.profile: generated\nmemory: 512\n\n[snap]\nlxc.apparmor.profile: generated\n"},
		{"one line per value", map[string]string{"lxc.mount.entry": "/c c"}, "arch: amd64\nlxc.apparmor.profile: generated\nmemory: 512\nlxc.mount.entry: /c c\n\n[snap]\nlxc.apparmor.profile: generated\n"},
		{"blank lines and carriage returns dropped, spaces trimmed", map[string]string{"lxc.mount.entry": " /c c \r\n\n/d d"}, "arch: amd64\nlxc.apparmor.profile: generated\nmemory: 512\nlxc.mount.entry: /c c\nlxc.mount.entry: /d d\n\n[snap]\nlxc.apparmor.profile: generated\n"},
		{"a value cannot add a key or a section", map[string]string{"lxc.mount.entry": "/a a\n[snap]\nmemory: 1"}, "arch: amd64\nlxc.apparmor.profile: generated\nmemory: 512\nlxc.mount.entry: /a a\nlxc.mount.entry: [snap]\nlxc.mount.entry: memory: 1\n\n[snap]\nlxc.apparmor.profile: generated\n"},
		{"add before the snapshots", map[string]string{"lxc.cgroup2.devices.allow": "c 195:* rwm\nc 509:* rwm"}, "arch: amd64\nlxc.apparmor.profile: generated\nmemory: 512\nlxc.mount.entry: /a a\nlxc.mount.entry: /b b\nlxc.cgroup2.devices.allow: c 195:* rwm\nlxc.cgroup2.devices.allow: c 509:* rwm\n\n[snap]\nlxc.apparmor.profile: generated\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustEdit(t, conf, tc.values); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	if got := mustEdit(t, "arch: amd64", map[string]string{"lxc.a": "b"}); got != "arch: amd64\nlxc.a: b\n" {
		t.Errorf("no final newline: got %q", got)
	}
	for _, k := range []string{"memory", "lxc.ok; rm -rf /", "lxc.", "lock", "lxc.a:b"} {
		if out, err := EditRaw([]byte(conf), map[string]string{k: "x"}); err == nil {
			t.Errorf("key %q accepted: %q", k, out)
		}
	}
}

func mustEdit(t *testing.T, conf string, values map[string]string) string {
	t.Helper()
	out, err := EditRaw([]byte(conf), values)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestConfLock(t *testing.T) {
	// The lock of the current config only; a snapshot's is history.
	confs := []string{"arch: amd64\nlock: backup\nmemory: 1\n", "lock:clone", "arch: amd64\n\n[snap]\nlock: snapshot\n", ""}
	want := []string{"backup", "clone", "", ""}
	for i, conf := range confs {
		if got := ConfLock([]byte(conf)); got != want[i] {
			t.Errorf("ConfLock(%q) = %q, want %q", conf, got, want[i])
		}
	}
}
