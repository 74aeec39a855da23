package docker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/driver/docker"
	"github.com/gantry-dev/gantry/internal/dockertest"
)

// TestEngineOverTLS: an engine on another host listens on TCP with
// --tlsverify; the driver reaches it with the client certificate that
// DOCKER_CERT_PATH and DOCKER_TLS_VERIFY name, as the docker CLI does, and
// is refused without one.
func TestEngineOverTLS(t *testing.T) {
	dockertest.Get(t)
	dir, err := os.MkdirTemp("", "gdt-tls-") // short: the engine's sockets live under it
	if err != nil {
		t.Fatal(err)
	}
	certs := filepath.Join(dir, "certs")
	writeTLSFiles(t, certs)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := "tcp://" + ln.Addr().String()
	ln.Close()
	eng, err := dockertest.StartEngineWith(filepath.Join(dir, "engine"), dockertest.Options{Args: []string{"-H", host, "--tlsverify",
		"--tlscacert", filepath.Join(certs, "ca.pem"), "--tlscert", filepath.Join(certs, "server-cert.pem"), "--tlskey", filepath.Join(certs, "server-key.pem")}})
	if err != nil {
		dockertest.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() { eng.Close(); dockertest.RemoveAll(dir) })
	ping := func() error {
		d, err := docker.New(host, nil)
		if err != nil {
			return err
		}
		defer d.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = d.Client.Ping(ctx)
		return err
	}

	t.Setenv("DOCKER_CERT_PATH", "")
	if err := ping(); err == nil {
		t.Errorf("the engine answered a driver without a client certificate")
	}
	t.Setenv("DOCKER_CERT_PATH", certs)
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	if err := ping(); err != nil {
		t.Errorf("driver with the client certificate: %v", err)
	}
}

// writeTLSFiles writes a CA, the engine's certificate for 127.0.0.1 and
// a client's, under the names dockerd's flags and DOCKER_CERT_PATH use.
func writeTLSFiles(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	caKey := newKey()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	write("ca.pem", "CERTIFICATE", caDER)
	for i, leaf := range []struct {
		prefix string
		usage  x509.ExtKeyUsage
	}{{"server-", x509.ExtKeyUsageServerAuth}, {"", x509.ExtKeyUsageClientAuth}} {
		key := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "test " + strconv.Itoa(i)},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{leaf.usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		write(leaf.prefix+"cert.pem", "CERTIFICATE", der)
		write(leaf.prefix+"key.pem", "EC PRIVATE KEY", keyDER)
	}
}
