package pve

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestParseSnapshots(t *testing.T) {
	out := "`-> pre-configured                 2025-01-02 10:00:00     no-description\n" +
		"    `-> phoenix-final              2025-01-02 11:00:00     no-description\n" +
		"        `-> current                                        You are here!\n"
	if got, want := parseSnapshots([]byte(out)), []string{"pre-configured", "phoenix-final"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := parseSnapshots([]byte("`-> current    You are here!\n")); len(got) != 0 {
		t.Errorf("no snapshots: got %q", got)
	}
}

func TestParseConfig(t *testing.T) {
	out := "arch: amd64\nnet0: name=eth0,bridge=vmbr0,ip=10.0.0.2/24\nlxc.mount.entry: /a a none bind\n" +
		"lxc.mount.entry: /b b none bind\ndescription: a: b\n\n[snap]\nmemory: 1\n"
	want := map[string]string{
		"arch": "amd64", "net0": "name=eth0,bridge=vmbr0,ip=10.0.0.2/24",
		"lxc.mount.entry": "/a a none bind\n/b b none bind", "description": "a: b",
	}
	if got := parseConfig([]byte(out)); !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

func TestDiskGB(t *testing.T) {
	for vol, want := range map[string]int{
		"local-zfs:subvol-101-disk-0,size=32G":                   32,
		"local-lvm:vm-101-disk-0,iothread=1,size=3584M":          4,
		"local-zfs:basevol-900-disk-0/subvol-910-disk-0,size=1T": 1024,
		"local:101/vm-101-disk-0.raw,size=8589934592":            8,
		"local-zfs:vm-101-disk-0":                                0,
		"":                                                       0,
	} {
		if got := diskGB(vol); got != want {
			t.Errorf("diskGB(%q) = %d, want %d", vol, got, want)
		}
	}
}

func TestEditRaw(t *testing.T) {
	conf := "arch: amd64\nlxc.apparmor.profile: generated\nmemory: 512\nlxc.mount.entry: /a a\nlxc.mount.entry: /b b\n\n[snap]\nlxc.apparmor.profile: generated\n"
	cases := []struct {
		name   string
		values map[string]string
		want   string
	}{
		{"replace in place", map[string]string{"lxc.apparmor.profile": "unconfined"},
			"arch: amd64\nlxc.apparmor.profile: unconfined\nmemory: 512\nlxc.mount.entry: /a a\nlxc.mount.entry: /b b\n\n[snap]\nlxc.apparmor.profile: generated\n"},
		{"delete all lines of a key", map[string]string{"lxc.mount.entry": ""},
			"arch: amd64\nlxc.apparmor.profile: generated\nmemory: 512\n\n[snap]\nlxc.apparmor.profile: generated\n"},
		{"one line per value", map[string]string{"lxc.mount.entry": "/c c"},
			"arch: amd64\nlxc.apparmor.profile: generated\nmemory: 512\nlxc.mount.entry: /c c\n\n[snap]\nlxc.apparmor.profile: generated\n"},
		{"add before the snapshots", map[string]string{"lxc.cgroup2.devices.allow": "c 195:* rwm\nc 509:* rwm"},
			"arch: amd64\nlxc.apparmor.profile: generated\nmemory: 512\nlxc.mount.entry: /a a\nlxc.mount.entry: /b b\nlxc.cgroup2.devices.allow: c 195:* rwm\nlxc.cgroup2.devices.allow: c 509:* rwm\n\n[snap]\nlxc.apparmor.profile: generated\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(editRaw([]byte(conf), tc.values)); got != tc.want {
				t.Errorf("got\n%s\nwant\n%s", got, tc.want)
			}
		})
	}
	if got := string(editRaw([]byte("arch: amd64"), map[string]string{"lxc.a": "b"})); got != "arch: amd64\nlxc.a: b\n" {
		t.Errorf("no final newline: got %q", got)
	}
}

func TestInterpreter(t *testing.T) {
	dir := t.TempDir()
	for body, want := range map[string][]string{
		"#!/bin/bash\necho":         {"/bin/bash"},
		"#!/usr/bin/env bash\necho": {"/usr/bin/env", "bash"},
		"#! /bin/sh -eu\n":          {"/bin/sh", "-eu"},
		"echo no shebang\n":         {"sh"},
		"":                          {"sh"},
		"#!/bin/bash -e -x\r\necho": {"/bin/bash", "-e -x"},
	} {
		p := filepath.Join(dir, "s")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, err := interpreter(p); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("interpreter(%q) = %q, %v; want %q", body, got, err, want)
		}
	}
}

func TestFormatArgv(t *testing.T) {
	got := formatArgv([]string{"/usr/sbin/pct", "set", "101", "--hostname", "a b", "--description", "$(x)", ""})
	want := `pct set 101 --hostname "a b" --description "$(x)" ""`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
