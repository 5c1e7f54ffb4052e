package pveapi

import (
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/phoenix-hypervisor/phoenix/api"
	"github.com/phoenix-hypervisor/phoenix/internal/fake/pveapi"
)

func TestLoadToken(t *testing.T) {
	tests := []struct {
		name    string
		content string
		mode    os.FileMode
		wantID  string
		wantErr string
	}{
		{name: "plain", content: testTokenID + "=" + testSecret + "\n", mode: 0o600, wantID: testTokenID},
		{name: "header form", content: "PVEAPIToken=" + testTokenID + "=" + testSecret, mode: 0o400, wantID: testTokenID},
		{name: "readable by group", content: testTokenID + "=" + testSecret, mode: 0o640, wantErr: "mode 0640 lets others read the token; refusing it (chmod 600"},
		{name: "readable by all", content: testTokenID + "=" + testSecret, mode: 0o644, wantErr: "mode 0644"},
		{name: "no token name", content: "root@pam=" + testSecret, mode: 0o600, wantErr: "want one line USER@REALM!TOKENID=SECRET"},
		{name: "no secret", content: testTokenID + "=", mode: 0o600, wantErr: "want one line"},
		{name: "two lines", content: testTokenID + "=" + testSecret + "\nmore " + testSecret, mode: 0o600, wantErr: "want one line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "token")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			os.Chmod(path, tt.mode)
			tok, err := LoadToken(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), testSecret) {
					t.Error("the error shows the secret")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tok.ID != tt.wantID || tok.secret != testSecret {
				t.Errorf("token %v", tok)
			}
			for _, s := range []string{fmt.Sprint(tok), fmt.Sprintf("%v %+v %#v %s", tok, tok, tok, tok)} {
				if strings.Contains(s, testSecret) {
					t.Errorf("formatted token shows the secret: %s", s)
				}
			}
		})
	}
}

func TestAPIURL(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "https://pve.lan:8006", want: "https://pve.lan:8006/api2/json"},
		{in: "https://pve.lan:8006/api2/json/", want: "https://pve.lan:8006/api2/json"},
		{in: "http://127.0.0.1:8006", want: "http://127.0.0.1:8006/api2/json"},
		{in: "pve.lan:8006", wantErr: "want https://HOST:8006"},
		{in: "https://root:pw@pve.lan:8006", wantErr: "credentials in the URL"},
		{in: "", wantErr: "no API URL"},
	}
	for _, tt := range tests {
		got, err := apiURL(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("apiURL(%q) err %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("apiURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestHost_TLSIsVerifiedUnlessAskedNotTo(t *testing.T) {
	fake := fakepveapi.New(fakepveapi.Options{TokenID: testTokenID, Secret: testSecret})
	srv := httptest.NewTLSServer(fake)
	defer func() { fake.Close(); srv.Close() }()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)

	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "system roots refuse a self-signed cert", opts: Options{}, wantErr: "certificate"},
		{name: "the cluster's CA file", opts: Options{CAFile: caFile}},
		{name: "insecure when asked", opts: Options{Insecure: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.URL, o.Token, o.Retries = srv.URL, Token{ID: testTokenID, secret: testSecret}, -1
			h, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			_, err = h.Get(ctx, api.KindLXC, 100)
			if tt.wantErr == "" {
				if !isNotFound(err) {
					t.Errorf("err %v, want not found", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err %v, want %q", err, tt.wantErr)
			}
		})
	}
}
