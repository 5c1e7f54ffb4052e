// Command fake-cluster serves a fake Proxmox VE cluster (internal/fake/pveapi)
// on loopback, to try phoenix's pve-api backend by hand:
//
//	go run ./hack/fake-cluster -dir .fake-cluster -ssh
//	  (or: make fake-cluster)
//
// It writes what phoenix needs into -dir (a token file of mode 0600, with
// -tls the CA certificate, with -ssh a client key and a known_hosts file
// for the nodes' SSH servers), prints the phoenix flags that use them, and
// logs one line per API request (never the token). It stops on Ctrl-C;
// the cluster's state lives in memory only.
package main
