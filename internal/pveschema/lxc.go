package pveschema

import (
	"fmt"
	"regexp"
	"strings"
)

// lxcKeyRE is how pve-container recognises a raw key line.
var lxcKeyRE = regexp.MustCompile(`^lxc\.[a-z0-9_\-.]+$`)

// lxcKeys is pve-container's whitelist of raw lxc.* keys (PVE/LXC/Config.pm
// valid_lxc_conf_keys): true for allowed keys, a message for keys Proxmox
// refuses with a reason.
var lxcKeys = map[string]string{
	"lxc.apparmor.profile": "", "lxc.apparmor.allow_incomplete": "", "lxc.apparmor.allow_nesting": "",
	"lxc.apparmor.raw": "", "lxc.selinux.context": "", "lxc.include": "", "lxc.arch": "",
	"lxc.uts.name": "", "lxc.signal.halt": "", "lxc.signal.reboot": "", "lxc.signal.stop": "",
	"lxc.init.cmd": "", "lxc.init.cwd": "", "lxc.init.uid": "", "lxc.init.gid": "", "lxc.init.groups": "",
	"lxc.pty.max": "", "lxc.console.logfile": "", "lxc.console.path": "", "lxc.tty.max": "",
	"lxc.devtty.dir": "", "lxc.hook.autodev": "", "lxc.autodev": "", "lxc.kmsg": "",
	"lxc.mount.fstab": "", "lxc.mount.entry": "", "lxc.mount.auto": "",
	"lxc.rootfs.path":    "lxc.rootfs.path is auto generated from rootfs",
	"lxc.rootfs.mount":   "",
	"lxc.rootfs.options": `lxc.rootfs.options is not supported, please use mount point options in the "rootfs" key`,
	"lxc.cap.drop":       "", "lxc.cap.keep": "", "lxc.seccomp.profile": "",
	"lxc.seccomp.notify.proxy": "", "lxc.seccomp.notify.cookie": "", "lxc.idmap": "",
	"lxc.hook.pre-start": "", "lxc.hook.pre-mount": "", "lxc.hook.mount": "", "lxc.hook.start": "",
	"lxc.hook.stop": "", "lxc.hook.post-stop": "", "lxc.hook.clone": "", "lxc.hook.destroy": "",
	"lxc.hook.version": "", "lxc.log.level": "", "lxc.log.file": "", "lxc.start.auto": "",
	"lxc.start.delay": "", "lxc.start.order": "", "lxc.group": "", "lxc.environment": "",
	"lxc.environment.runtime": "", "lxc.environment.hooks": "",
	"lxc.sysctl.fs.mqueue": "", "lxc.sysctl.kernel.msgmax": "", "lxc.sysctl.kernel.msgmnb": "",
	"lxc.sysctl.kernel.msgmni": "", "lxc.sysctl.kernel.sem": "", "lxc.sysctl.kernel.shmall": "",
	"lxc.sysctl.kernel.shmmax": "", "lxc.sysctl.kernel.shmmni": "", "lxc.sysctl.kernel.shm_rmid_forced": "",
}

// deprecatedLXCKeys were renamed with LXC 3.0; Proxmox still reads them,
// with a warning.
var deprecatedLXCKeys = map[string]bool{
	"lxc.aa_profile": true, "lxc.aa_allow_incomplete": true, "lxc.console": true, "lxc.devttydir": true,
	"lxc.haltsignal": true, "lxc.rebootsignal": true, "lxc.stopsignal": true, "lxc.id_map": true,
	"lxc.init_cmd": true, "lxc.loglevel": true, "lxc.logfile": true, "lxc.mount": true,
	"lxc.network.type": true, "lxc.network.flags": true, "lxc.network.link": true, "lxc.network.mtu": true,
	"lxc.network.name": true, "lxc.network.hwaddr": true, "lxc.network.ipv4": true,
	"lxc.network.ipv4.gateway": true, "lxc.network.ipv6": true, "lxc.network.ipv6.gateway": true,
	"lxc.network.script.up": true, "lxc.network.script.down": true, "lxc.pts": true,
	"lxc.se_context": true, "lxc.seccomp": true, "lxc.tty": true, "lxc.utsname": true,
}

// CheckLXCKey reports whether Proxmox reads a raw lxc.* key in a
// container's config file (PVE::LXC::Config::is_valid_lxc_conf_key), and
// why not. A refused key makes pct fail on the whole file
// ("unable to parse config"), so it must never be written there.
func CheckLXCKey(key string) error {
	if !lxcKeyRE.MatchString(key) {
		return fmt.Errorf("%s: not a raw LXC key (lxc. then lowercase letters, digits, '_', '-', '.')", key)
	}
	if strings.HasPrefix(key, "lxc.limit.") || deprecatedLXCKeys[key] {
		return nil
	}
	if msg, ok := lxcKeys[key]; ok {
		if msg != "" {
			return fmt.Errorf("%s", msg)
		}
		return nil
	}
	for _, prefix := range []string{"lxc.cgroup.", "lxc.cgroup2.", "lxc.prlimit.", "lxc.net."} {
		if strings.HasPrefix(key, prefix) {
			return nil
		}
	}
	return fmt.Errorf("%s is not a key Proxmox VE allows in a container config", key)
}
