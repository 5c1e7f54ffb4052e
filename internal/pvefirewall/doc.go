// Package pvefirewall is a guest's Proxmox VE firewall as phoenix manages
// it: strict validation of the rules of the desired state, after
// pve-firewall's grammar (so no value can carry another option or a second
// line into the file), the <vmid>.fw file Proxmox keeps under
// /etc/pve/firewall, and a parser for that file, which the pve backend
// reads back and the fakes keep. The API form of a rule (the parameters
// of /nodes/{node}/{lxc|qemu}/{vmid}/firewall/rules) is built here too, so
// that every backend writes the same rules.
package pvefirewall
