package registry

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

func TestParseRef(t *testing.T) {
	dg := "sha256:" + strings.Repeat("ab", 32)
	for _, tt := range []struct {
		in   string
		want Ref
		code string
	}{
		{"127.0.0.1:5000/shop/web@" + dg, Ref{"127.0.0.1:5000", "shop/web", dg}, ""},
		{"registry.example/a/b/c@" + dg, Ref{"registry.example", "a/b/c", dg}, ""},
		{"localhost/web@" + dg, Ref{"localhost", "web", dg}, ""},
		{"127.0.0.1:5000/shop/web:latest", Ref{}, gantry.EINVALID},
		{"127.0.0.1:5000/shop/web@sha256:abc", Ref{}, gantry.EINVALID},
		{"web@" + dg, Ref{}, gantry.EINVALID},
		{"127.0.0.1:5000/Shop@" + dg, Ref{}, gantry.EINVALID},
	} {
		got, err := ParseRef(tt.in)
		if got != tt.want || gantry.ErrorCode(err) != tt.code {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v, code %q", tt.in, got, err, tt.want, tt.code)
		}
		if err == nil && got.String() != tt.in {
			t.Errorf("ParseRef(%q).String() = %q", tt.in, got.String())
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost:5000": true, "[::1]:5000": true, "localhost": true,
		"10.0.0.1:5000": false, "registry.example": false, "127.example.com:5000": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

// TestCopyRefusesWrongDigest: a source registry that serves, under a
// digest, bytes that do not hash to it (corrupted or tampered with) is
// refused before anything reaches the destination. A real registry cannot
// be made to do this, hence the hand-written one.
func TestCopyRefusesWrongDigest(t *testing.T) {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"` + MediaDockerManifest + `","config":{"digest":"sha256:` + strings.Repeat("0", 64) + `"},"layers":[]}`)
	claimed := "sha256:" + strings.Repeat("1", 64) // not Digest(manifest)
	var dstHits int
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", MediaDockerManifest)
		w.Write(manifest)
	}))
	defer src.Close()
	dst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			dstHits++
		}
		http.NotFound(w, r)
	}))
	defer dst.Close()
	host := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	var c Client
	_, err := c.Copy(context.Background(), host(src)+"/shop/web@"+claimed, host(dst)+"/shop/web")
	if gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(err.Error(), "refusing") {
		t.Errorf("Copy from a registry that lies about a digest: %v, want code %q and a refusal", err, gantry.EFAILED)
	}
	if dstHits != 0 {
		t.Errorf("the destination got %d writes from a refused copy", dstHits)
	}
}

func TestCopyAsksForCredentials(t *testing.T) {
	src := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="x"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	}))
	defer src.Close()
	h := strings.TrimPrefix(src.URL, "http://")
	var c Client
	_, err := c.Copy(context.Background(), h+"/a@sha256:"+strings.Repeat("1", 64), h+"/b")
	if gantry.ErrorCode(err) != gantry.EFORBIDDEN {
		t.Errorf("Copy from a registry that wants credentials: %v, want code %q", err, gantry.EFORBIDDEN)
	}
}
