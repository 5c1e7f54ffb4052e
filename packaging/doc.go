// Package packaging holds what installs phoenix on a Proxmox host: the
// systemd unit phoenix-controller.service (a template; make install fills
// in the binary's path), the /etc/default/phoenix it reads, and the nfpm
// config and maintainer scripts of the Debian package. Its test runs
// `make install` into a temporary root and checks what lands there,
// including `systemd-analyze verify` of the unit. docs/install.md explains
// the choices.
package packaging
