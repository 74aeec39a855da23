package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"github.com/gantry-dev/gantry/proxy"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// certStore picks a certificate by SNI: a static one from --cert first, an
// ACME one (when configured) otherwise.
type certStore struct {
	static map[string]*tls.Certificate // by host, or "*.domain"
	acme   *autocert.Manager
}

// parseCertFlag reads "host=cert.pem,key.pem".
func parseCertFlag(v string) (host, certFile, keyFile string, err error) {
	host, files, ok := strings.Cut(v, "=")
	certFile, keyFile, ok2 := strings.Cut(files, ",")
	if !ok || !ok2 || host == "" || certFile == "" || keyFile == "" || strings.Contains(keyFile, ",") {
		return "", "", "", usagef("--cert %q: want host=cert.pem,key.pem", v)
	}
	return strings.ToLower(host), certFile, keyFile, nil
}

func loadCertStore(flags []string) (*certStore, error) {
	cs := &certStore{static: map[string]*tls.Certificate{}}
	for _, v := range flags {
		host, certFile, keyFile, err := parseCertFlag(v)
		if err != nil {
			return nil, err
		}
		if _, dup := cs.static[host]; dup {
			return nil, usagef("--cert: host %s given twice", host)
		}
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, usagef("--cert %s: %v", host, err)
		}
		cs.static[host] = &cert
	}
	return cs, nil
}

func (cs *certStore) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	name := strings.ToLower(strings.TrimSuffix(hello.ServerName, "."))
	if c, ok := cs.static[name]; ok {
		return c, nil
	}
	if _, parent, ok := strings.Cut(name, "."); ok {
		if c, ok := cs.static["*."+parent]; ok {
			return c, nil
		}
	}
	if cs.acme != nil && name != "" {
		return cs.acme.GetCertificate(hello)
	}
	return nil, fmt.Errorf("no certificate for server name %q", name)
}

func (cs *certStore) tlsConfig() *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if cs.acme != nil {
		protos = append(protos, acme.ALPNProto)
	}
	return &tls.Config{GetCertificate: cs.getCertificate, MinVersion: tls.VersionTLS12, NextProtos: protos}
}

// newACMEManager obtains certificates for the hosts of the router's routes
// (exact names only: wildcards need a DNS challenge). caFile, if set, is
// the CA bundle that the ACME server's own HTTPS certificate is checked
// against (a private ACME server); otherwise the system roots are used.
func newACMEManager(r *proxy.Router, email, directory, cacheDir, caFile string) (*autocert.Manager, error) {
	client := &acme.Client{DirectoryURL: directory}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, usagef("--acme-ca-file: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usagef("--acme-ca-file %s: no PEM certificate in it", caFile)
		}
		client.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:           http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		}}
	}
	return &autocert.Manager{
		Prompt: autocert.AcceptTOS,
		Email:  email,
		Cache:  autocert.DirCache(cacheDir),
		Client: client,
		HostPolicy: func(_ context.Context, host string) error {
			for _, rs := range r.Snapshot().Routes {
				for _, h := range append(append([]string(nil), rs.Route.Hosts...), rs.Route.PreviewHosts...) {
					if strings.EqualFold(h, host) {
						return nil
					}
				}
			}
			return fmt.Errorf("host %q is not served by any route", host)
		},
	}, nil
}

// httpsRedirects is the set of routes whose plain-HTTP requests are
// redirected to HTTPS, rebuilt from the router's state on every change so
// that a request only reads an atomic pointer.
type httpsRedirects struct {
	routes atomic.Pointer[map[string]bool]
}

func (h *httpsRedirects) update(s proxy.State) {
	m := map[string]bool{}
	for _, rs := range s.Routes {
		if rs.Route.RedirectHTTPS {
			m[rs.Route.Name] = true
		}
	}
	h.routes.Store(&m)
}

func (h *httpsRedirects) has(name string) bool {
	m := h.routes.Load()
	return m != nil && (*m)[name]
}

// withHTTPSRedirect answers plain-HTTP requests to routes with
// RedirectHTTPS with a permanent redirect to the same URL on httpsPort. The
// host in the Location is the one the router matched to a route, so a
// forged Host header cannot steer the redirect elsewhere.
func withHTTPSRedirect(next http.Handler, r *proxy.Router, set *httpsRedirects, httpsPort string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.TLS != nil {
			next.ServeHTTP(w, req)
			return
		}
		name, ok := r.Lookup(req.Host, req.URL.Path)
		if !ok || !set.has(name) {
			next.ServeHTTP(w, req)
			return
		}
		host := req.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if httpsPort != "443" {
			host = net.JoinHostPort(host, httpsPort)
		}
		http.Redirect(w, req, "https://"+host+req.URL.RequestURI(), http.StatusPermanentRedirect)
	})
}
