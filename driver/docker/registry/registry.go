// Package registry speaks the Docker Registry HTTP API v2 (the OCI
// distribution API) well enough to copy an image by digest from one
// registry to another, the way `oc tag` reuses a tested image: the manifest
// is fetched by digest and checked against it, every blob it names is
// mounted or copied, the very same manifest bytes are put under the same
// digest, and the result is fetched back and checked on arrival.
//
// It never reads or writes a tag to decide what to copy (tags move), never
// rewrites a manifest (that would change the digest), and never goes through
// a Docker Engine. It speaks plain HTTP to loopback registries only (HTTPS
// elsewhere) and anonymously: registries that ask for credentials get an
// error that says so.
package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
)

// Manifest media types the copy understands.
const (
	MediaDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaOCIManifest    = "application/vnd.oci.image.manifest.v1+json"
	MediaOCIIndex       = "application/vnd.oci.image.index.v1+json"
)

var acceptManifests = strings.Join([]string{MediaDockerManifest, MediaDockerList, MediaOCIManifest, MediaOCIIndex}, ", ")

// maxManifest bounds a manifest read into memory.
const maxManifest = 4 << 20

// Client copies images between registries. The zero value works.
type Client struct {
	// HTTP is the client for registry requests (default: one with a 30s
	// header timeout; blob bodies may take longer).
	HTTP *http.Client
	// PlainHTTP reports whether host is spoken to over http; default: the
	// loopback hosts, as the Docker Engine does.
	PlainHTTP func(host string) bool
}

// Ref is a parsed image reference by digest: Host/Repo@Digest.
type Ref struct {
	Host   string // registry host[:port]
	Repo   string // path inside the registry, e.g. shop/web
	Digest string // sha256:<hex>
}

func (r Ref) String() string { return r.Host + "/" + r.Repo + "@" + r.Digest }

// Repository is Host/Repo.
func (r Ref) Repository() string { return r.Host + "/" + r.Repo }

var (
	digestRE = lazyre.New(`^sha256:[a-f0-9]{64}$`)
	repoRE   = lazyre.New(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
)

// ParseRef parses "host[:port]/path@sha256:<hex>". The host is required:
// an image without a registry cannot be copied anywhere meaningful.
func ParseRef(s string) (Ref, error) {
	repo, digest, ok := strings.Cut(s, "@")
	if !ok || !digestRE.MatchString(digest) {
		return Ref{}, gantry.Errorf(gantry.EINVALID, "image %q is not a repository@sha256:<64 hex digits> reference", s)
	}
	host, path, err := ParseRepository(repo)
	if err != nil {
		return Ref{}, err
	}
	return Ref{Host: host, Repo: path, Digest: digest}, nil
}

// ParseRepository splits "host[:port]/path" (no tag, no digest).
func ParseRepository(s string) (host, path string, err error) {
	host, path, ok := strings.Cut(s, "/")
	if !ok || host == "" || !(strings.ContainsAny(host, ".:") || host == "localhost") {
		return "", "", gantry.Errorf(gantry.EINVALID, "repository %q does not start with a registry host (host[:port]/path)", s)
	}
	if !repoRE.MatchString(path) {
		return "", "", gantry.Errorf(gantry.EINVALID, "repository %q: %q is not a valid repository path (lowercase, no tag)", s, path)
	}
	return host, path, nil
}

func (c *Client) http() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return defaultHTTP
}

var defaultHTTP = &http.Client{Transport: &http.Transport{
	Proxy:                 nil, // registries are reached directly; a proxy would see loopback traffic
	DialContext:           (&net.Dialer{Timeout: 10 * time.Second}).DialContext,
	ResponseHeaderTimeout: 30 * time.Second,
	MaxIdleConnsPerHost:   4,
}}

func (c *Client) base(host string) string {
	plain := c.PlainHTTP
	if plain == nil {
		plain = IsLoopback
	}
	if plain(host) {
		return "http://" + host
	}
	return "https://" + host
}

// IsLoopback reports whether a registry host[:port] is on loopback.
func IsLoopback(host string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Manifest fetches the manifest r names and checks that its bytes have r's
// digest. It returns the media type and the bytes.
func (c *Client) Manifest(ctx context.Context, r Ref) (string, []byte, error) {
	resp, err := c.do(ctx, http.MethodGet, c.base(r.Host)+"/v2/"+r.Repo+"/manifests/"+r.Digest, nil, -1,
		map[string]string{"Accept": acceptManifests})
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", nil, statusError(resp, "get manifest "+r.String())
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifest+1))
	if err != nil {
		return "", nil, fmt.Errorf("get manifest %s: %w", r, err)
	}
	if len(body) > maxManifest {
		return "", nil, gantry.Errorf(gantry.EFAILED, "manifest %s is larger than %d bytes", r, maxManifest)
	}
	if got := Digest(body); got != r.Digest {
		return "", nil, gantry.Errorf(gantry.EFAILED, "registry %s sent a manifest with digest %s for %s: refusing it", r.Host, got, r.Digest)
	}
	mt := resp.Header.Get("Content-Type")
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	return mt, body, nil
}

// Has reports whether the registry has the manifest r names.
func (c *Client) Has(ctx context.Context, r Ref) (bool, error) {
	resp, err := c.do(ctx, http.MethodHead, c.base(r.Host)+"/v2/"+r.Repo+"/manifests/"+r.Digest, nil, -1,
		map[string]string{"Accept": acceptManifests})
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, statusError(resp, "look up "+r.String())
}

// Delete removes the manifest r names from its registry (the registry must
// allow deletes; blobs go at its next garbage collection). A manifest that
// is not there is not an error.
func (c *Client) Delete(ctx context.Context, r Ref) error {
	resp, err := c.do(ctx, http.MethodDelete, c.base(r.Host)+"/v2/"+r.Repo+"/manifests/"+r.Digest, nil, -1, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted || resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusNotFound {
		return nil
	}
	return statusError(resp, "delete "+r.String())
}

// Digest is the sha256 digest of b, as "sha256:<hex>".
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func (c *Client) do(ctx context.Context, method, u string, body io.Reader, size int64, headers map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if size >= 0 && body != nil {
		req.ContentLength = size
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := c.http().Do(req)
	if err != nil {
		return nil, gantry.Errorf(gantry.EUNAVAILABLE, "registry request %s %s: %v", method, redact(u), err)
	}
	return resp, nil
}

// statusError turns an unexpected answer into an error that says what the
// registry said, without echoing a body of any size.
func statusError(resp *http.Response, what string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	msg := strings.TrimSpace(string(b))
	switch resp.StatusCode {
	case http.StatusUnauthorized, http.StatusForbidden:
		return gantry.Errorf(gantry.EFORBIDDEN, "%s: the registry asks for credentials (%s); gantry speaks to registries anonymously", what, resp.Status)
	case http.StatusNotFound:
		return gantry.Errorf(gantry.ENOTFOUND, "%s: not found in the registry", what)
	}
	return gantry.Errorf(gantry.EFAILED, "%s: registry answered %s: %s", what, resp.Status, msg)
}

// redact drops a URL's query, which may hold upload state.
func redact(u string) string {
	if p, err := url.Parse(u); err == nil {
		p.RawQuery = ""
		return p.String()
	}
	return u
}

var errMediaType = errors.New("unsupported manifest media type")
