package main

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8006", "address to serve the API on (loopback only)")
	nodes := flag.String("nodes", "pve1,pve2,pve3", "node names, comma-separated")
	dir := flag.String("dir", ".fake-cluster", "folder for the token file, CA, SSH key and known_hosts")
	useTLS := flag.Bool("tls", false, "serve https with a self-signed certificate (written to DIR/ca.pem)")
	useSSH := flag.Bool("ssh", true, "start an SSH server per node, for container scripts and lxc.* keys")
	taskDuration := flag.Duration("task-duration", 300*time.Millisecond, "how long every task runs")
	local := flag.String("local-storages", "local,local-lvm", "storages that are not shared (no cross-node clones from them)")
	agentDelay := flag.Duration("agent-delay", 0, "how long after a VM starts its guest agent answers (a cloud image installing it)")
	flag.Parse()
	log.SetFlags(log.Ltime | log.Lmicroseconds)
	if err := run(*addr, *nodes, *dir, *useTLS, *useSSH, *taskDuration, *local, *agentDelay); err != nil {
		log.Fatal(err)
	}
}

func run(addr, nodes, dir string, useTLS, useSSH bool, taskDuration time.Duration, local string, agentDelay time.Duration) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		// The fake accepts anything the token allows, and -tls is optional:
		// it is not for a network.
		return fmt.Errorf("-addr %s: the fake cluster serves loopback only", addr)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	secret := make([]byte, 16)
	rand.Read(secret)
	tokenID := "root@pam!phoenix"
	tokenFile := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenFile, []byte(tokenID+"="+hex.EncodeToString(secret)+"\n"), 0o600); err != nil {
		return err
	}
	if err := os.Chmod(tokenFile, 0o600); err != nil {
		return err
	}
	c := fakepveapi.New(fakepveapi.Options{
		Nodes:         strings.Split(nodes, ","),
		TokenID:       tokenID,
		Secret:        hex.EncodeToString(secret),
		TaskDuration:  taskDuration,
		AgentDelay:    agentDelay,
		LocalStorages: strings.Split(local, ","),
	})
	defer c.Close()
	c.OnRequest(func(method, path string) { log.Printf("%s %s", method, path) })

	flags := []string{"--backend pve-api", "--pve-token-file " + tokenFile, "--pve-default-node " + c.Nodes()[0]}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 10 * time.Second}
	scheme := "http"
	if useTLS {
		cert, err := selfSigned(filepath.Join(dir, "ca.pem"))
		if err != nil {
			return err
		}
		// HTTP/1.1 only: the fake writes Proxmox's status lines itself.
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
		flags = append(flags, "--pve-ca-file "+filepath.Join(dir, "ca.pem"))
	}
	flags = append([]string{"--pve-url " + scheme + "://" + ln.Addr().String()}, flags...)
	if useSSH {
		sshFlags, err := startSSH(c, dir)
		if err != nil {
			return err
		}
		flags = append(flags, sshFlags...)
	}
	fmt.Printf("fake cluster with nodes %s on %s://%s\n\nphoenix flags:\n  %s\n\n", nodes, scheme, ln.Addr(), strings.Join(flags, " \\\n  "))
	go func() {
		stop := make(chan os.Signal, 1)
		signal.Notify(stop, os.Interrupt)
		<-stop
		srv.Close()
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func startSSH(c *fakepveapi.Cluster, dir string) ([]string, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "fake-cluster")
	if err != nil {
		return nil, err
	}
	key := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(key, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, err
	}
	spub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	eps, err := c.StartSSH(spub)
	if err != nil {
		return nil, err
	}
	kh := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(kh, []byte(fakepveapi.KnownHosts(eps)), 0o600); err != nil {
		return nil, err
	}
	flags := []string{"--pve-ssh-key " + key, "--pve-ssh-known-hosts " + kh}
	for _, ep := range eps {
		flags = append(flags, "--pve-ssh-addr "+ep.Node+"="+ep.Addr)
	}
	return flags, nil
}

// selfSigned makes a certificate for 127.0.0.1 and localhost and writes it
// to caFile, for --pve-ca-file.
func selfSigned(caFile string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "fake-cluster"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(30 * 24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(caFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
}
