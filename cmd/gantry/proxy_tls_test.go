package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// MustSelfSigned writes a self-signed certificate for names and returns
// the cert and key paths and a pool that trusts it.
func MustSelfSigned(tb testing.TB, names ...string) (certFile, keyFile string, pool *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: names[0]},
		DNSNames:              names,
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

func TestProxyTLS(t *testing.T) {
	secCert, secKey, secPool := MustSelfSigned(t, "secure.shop.localhost")
	wildCert, wildKey, wildPool := MustSelfSigned(t, "*.wild.localhost")
	p := startProxy(t, "--tls-listen", "127.0.0.1:0",
		"--cert", "secure.shop.localhost="+secCert+","+secKey,
		"--cert", "*.wild.localhost="+wildCert+","+wildKey)
	backend := MustBackend(t, "app")
	adm := "--admin=" + p.admin
	MustProxyCLI(t, "proxy", "deploy", "shop/prod", "--host", "secure.shop.localhost", "--host", "a.wild.localhost", "--target", backend, "--redirect-https", adm)
	MustProxyCLI(t, "proxy", "deploy", "shop/test", "--host", "plain.shop.localhost", "--target", backend, adm)
	httpsAddr := p.addr("https")
	_, httpsPort, _ := strings.Cut(httpsAddr, ":")

	t.Run("https by SNI", func(t *testing.T) {
		tests := []struct {
			host string
			pool *x509.CertPool
		}{
			{"secure.shop.localhost", secPool},
			{"a.wild.localhost", wildPool},
		}
		for _, tt := range tests {
			client := &http.Client{Transport: &http.Transport{
				TLSClientConfig: &tls.Config{RootCAs: tt.pool, ServerName: tt.host},
			}}
			req, _ := http.NewRequest("GET", "https://"+httpsAddr+"/", nil)
			req.Host = tt.host
			resp, err := client.Do(req)
			if err != nil {
				t.Errorf("%s: %v", tt.host, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != "app" {
				t.Errorf("%s: got %d %q, want 200 app", tt.host, resp.StatusCode, body)
			}
		}
	})

	t.Run("unknown server name", func(t *testing.T) {
		conn, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: "other.localhost", InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			t.Fatal("handshake for a name without a certificate: got nil error")
		}
	})

	t.Run("redirect", func(t *testing.T) {
		noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		req, _ := http.NewRequest("GET", "http://"+p.addr("http")+"/cart?id=7", nil)
		req.Host = "secure.shop.localhost"
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := "https://secure.shop.localhost:" + httpsPort + "/cart?id=7"
		if resp.StatusCode != http.StatusPermanentRedirect || resp.Header.Get("Location") != want {
			t.Errorf("plain request to a redirecting route: got %d %q, want 308 %q", resp.StatusCode, resp.Header.Get("Location"), want)
		}
		// A route without RedirectHTTPS serves plain HTTP.
		if code, body, err := hostGet(noFollow, p.addr("http"), "plain.shop.localhost", "/"); err != nil || code != 200 || body != "app" {
			t.Errorf("plain route: got %d %q %v, want 200 app", code, body, err)
		}
		// Unknown hosts are the router's to refuse, not redirected.
		if code, _, err := hostGet(noFollow, p.addr("http"), "evil.example", "/"); err != nil || code != 404 {
			t.Errorf("unknown host: got %d %v, want 404", code, err)
		}
	})
}
