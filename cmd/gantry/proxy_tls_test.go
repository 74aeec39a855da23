package main

import (
	"context"
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
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/proxy"
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

// MustRouter returns a real router holding routes.
func MustRouter(tb testing.TB, routes ...gantry.Route) *proxy.Router {
	tb.Helper()
	r := proxy.New(proxy.Config{})
	tb.Cleanup(func() { r.Close() })
	var st proxy.State
	for _, rt := range routes {
		st.Routes = append(st.Routes, proxy.RouteState{Route: rt, Active: []string{"127.0.0.1:9"}})
	}
	if err := r.Restore(context.Background(), st); err != nil {
		tb.Fatal(err)
	}
	return r
}

func TestHTTPSRedirectPort(t *testing.T) {
	r := MustRouter(t,
		gantry.Route{Name: "shop/prod", Hosts: []string{"shop.localhost"}, RedirectHTTPS: true},
		gantry.Route{Name: "shop/test", Hosts: []string{"test.shop.localhost"}})
	var set httpsRedirects
	set.update(r.Snapshot())
	next := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(299) })
	tests := []struct {
		port, host, target string
		wantCode           int
		wantLocation       string
	}{
		{"443", "shop.localhost", "/a?b=c", 308, "https://shop.localhost/a?b=c"},
		{"443", "shop.localhost:8080", "/", 308, "https://shop.localhost/"},
		{"8443", "SHOP.localhost:8080", "/x", 308, "https://SHOP.localhost:8443/x"},
		{"443", "test.shop.localhost", "/", 299, ""},
		{"443", "elsewhere.example", "/", 299, ""},
	}
	for _, tt := range tests {
		h := withHTTPSRedirect(next, r, &set, tt.port)
		req := httptest.NewRequest("GET", "http://x"+tt.target, nil)
		req.Host = tt.host
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tt.wantCode || rec.Header().Get("Location") != tt.wantLocation {
			t.Errorf("%s%s on port %s: got %d %q, want %d %q", tt.host, tt.target, tt.port, rec.Code, rec.Header().Get("Location"), tt.wantCode, tt.wantLocation)
		}
	}
}

func TestACMEHostPolicy(t *testing.T) {
	r := MustRouter(t, gantry.Route{Name: "shop/prod", Hosts: []string{"shop.localhost"}, PreviewHosts: []string{"next.shop.localhost"}})
	m, err := newACMEManager(r, "ops@example.com", "https://127.0.0.1:14000/dir", t.TempDir(), "")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for host, wantOK := range map[string]bool{"shop.localhost": true, "next.shop.localhost": true, "other.localhost": false} {
		if err := m.HostPolicy(ctx, host); (err == nil) != wantOK {
			t.Errorf("HostPolicy(%s): got %v, want allowed=%v", host, err, wantOK)
		}
	}
	if got := m.Client.DirectoryURL; got != "https://127.0.0.1:14000/dir" {
		t.Errorf("directory: got %q", got)
	}
}
