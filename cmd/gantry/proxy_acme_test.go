package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// pebbleVersion is the ACME test server the ACME test runs against.
const pebbleVersion = "v2.10.1"

var (
	pebbleOnce sync.Once
	pebbleBin  string
	pebbleMod  string // its module directory, for its test certificates
	pebbleErr  error
)

// pebble builds Pebble from the Go module proxy once per test run; the
// test skips when that is impossible (offline).
func pebble(t *testing.T) (bin, modDir string) {
	t.Helper()
	pebbleOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gantry-pebble-")
		if err != nil {
			pebbleErr = err
			return
		}
		cmd := exec.Command("go", "install", "github.com/letsencrypt/pebble/v2/cmd/pebble@"+pebbleVersion)
		cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
		cmd.Dir = dir // outside this module: pebble's dependencies stay out of go.mod
		if out, err := cmd.CombinedOutput(); err != nil {
			pebbleErr = fmt.Errorf("go install pebble: %v\n%s", err, out)
			return
		}
		out, err := exec.Command("go", "env", "GOMODCACHE").Output()
		if err != nil {
			pebbleErr = err
			return
		}
		pebbleBin = filepath.Join(dir, "pebble")
		pebbleMod = filepath.Join(strings.TrimSpace(string(out)), "github.com", "letsencrypt", "pebble", "v2@"+pebbleVersion)
	})
	if pebbleErr != nil {
		t.Skipf("pebble unavailable: %v", pebbleErr)
	}
	return pebbleBin, pebbleMod
}

// TestProxyACMEPebble obtains a certificate for a route's host from Pebble
// on the first TLS handshake for it. Pebble is told to consider every
// challenge valid (PEBBLE_VA_ALWAYS_VALID): solving http-01 needs DNS for
// the test host, which loopback tests cannot have; the ACME account, order,
// finalization and the SNI plumbing are real.
func TestProxyACMEPebble(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs pebble")
	}
	bin, mod := pebble(t)
	dir := t.TempDir()
	acmeAddr, mgmtAddr := freeAddr(t), freeAddr(t)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":           acmeAddr,
		"managementListenAddress": mgmtAddr,
		"certificate":             filepath.Join(mod, "test", "certs", "localhost", "cert.pem"),
		"privateKey":              filepath.Join(mod, "test", "certs", "localhost", "key.pem"),
		"httpPort":                5002,
		"tlsPort":                 5001,
		"retryAfter":              map[string]int{"authz": 1, "order": 1},
	}}
	b, _ := json.Marshal(conf)
	confFile := filepath.Join(dir, "pebble.json")
	os.WriteFile(confFile, b, 0o600)
	logFile, err := os.Create(filepath.Join(dir, "pebble.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(bin, "-config", confFile)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	waitTCP(t, acmeAddr)

	p := startProxy(t, "--tls-listen", "127.0.0.1:0",
		"--acme-directory", "https://"+acmeAddr+"/dir",
		"--acme-email", "ops@example.com",
		"--acme-ca-file", filepath.Join(mod, "test", "certs", "pebble.minica.pem"),
		"--acme-cache", filepath.Join(dir, "acme"))
	MustProxyCLI(t, "proxy", "deploy", "shop/prod", "--host", "acme.shop.localhost", "--target", MustBackend(t, "app"), "--admin", p.admin)

	dialer := &tlsDialer{timeout: 60 * time.Second}
	cert, err := dialer.peerCert(p.addr("https"), "acme.shop.localhost")
	if err != nil {
		b, _ := os.ReadFile(logFile.Name())
		t.Fatalf("TLS handshake for a route host: %v\nproxy log:\n%s\npebble log:\n%s", err, p.stderr.String(), b)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "acme.shop.localhost" || !strings.Contains(cert.Issuer.CommonName, "Pebble") {
		t.Errorf("certificate: names %v issuer %q; want acme.shop.localhost issued by Pebble", cert.DNSNames, cert.Issuer.CommonName)
	}
	if _, err := os.Stat(filepath.Join(dir, "acme", "acme.shop.localhost")); err != nil {
		t.Errorf("certificate not cached: %v", err)
	}
	// A host no route serves gets no certificate.
	if _, err := dialer.peerCert(p.addr("https"), "stranger.localhost"); err == nil {
		t.Error("handshake for a host without a route: got nil error")
	}
}

type tlsDialer struct{ timeout time.Duration }

// peerCert handshakes with addr for serverName and returns the leaf
// certificate. Verification is off: the test checks the issuer itself.
func (d *tlsDialer) peerCert(addr, serverName string) (*x509.Certificate, error) {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: d.timeout}, "tcp", addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// waitTCP waits until addr accepts connections.
func waitTCP(tb testing.TB, addr string) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := (&net.Dialer{Timeout: time.Second}).Dial("tcp", addr)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s not listening after 30s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
