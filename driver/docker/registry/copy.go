package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"github.com/gantry-dev/gantry"
)

// manifestRefs is what a copy needs of a manifest: an index names other
// manifests, an image manifest names its config and layers.
type manifestRefs struct {
	MediaType string       `json:"mediaType"`
	Manifests []descriptor `json:"manifests"`
	Config    *descriptor  `json:"config"`
	Layers    []descriptor `json:"layers"`
}

type descriptor struct {
	MediaType string   `json:"mediaType"`
	Digest    string   `json:"digest"`
	Size      int64    `json:"size"`
	URLs      []string `json:"urls"`
}

// Copy copies the image src (host/repo@sha256:…) into dstRepo (host/repo)
// under the same digest, and tags it there with tags, if any. It checks the
// manifest's digest when it fetches it and again once it has arrived, and
// returns dstRepo@digest. Copying an image that is already there only
// checks it.
func (c *Client) Copy(ctx context.Context, src, dstRepo string, tags ...string) (string, error) {
	from, err := ParseRef(src)
	if err != nil {
		return "", err
	}
	host, path, err := ParseRepository(dstRepo)
	if err != nil {
		return "", err
	}
	to := Ref{Host: host, Repo: path, Digest: from.Digest}
	if err := c.copyManifest(ctx, from, to, 0); err != nil {
		return "", fmt.Errorf("copy %s to %s: %w", src, dstRepo, err)
	}
	// The check on arrival: what the destination serves under the digest
	// hashes to the digest (Manifest refuses anything else).
	mt, got, err := c.Manifest(ctx, to)
	if err != nil {
		return "", fmt.Errorf("copy %s to %s: check on arrival: %w", src, dstRepo, err)
	}
	for _, tag := range tags {
		if err := c.putManifest(ctx, to, tag, mt, got); err != nil {
			return "", fmt.Errorf("copy %s to %s: tag %s: %w", src, dstRepo, tag, err)
		}
	}
	return to.String(), nil
}

// copyManifest copies what the manifest names, then the manifest itself, so
// that a registry never holds a manifest whose blobs are missing.
func (c *Client) copyManifest(ctx context.Context, from, to Ref, depth int) error {
	if depth > 2 {
		return gantry.Errorf(gantry.EINVALID, "manifest %s nests indexes too deep", from)
	}
	if ok, err := c.Has(ctx, to); err != nil {
		return err
	} else if ok {
		return nil
	}
	mt, body, err := c.Manifest(ctx, from)
	if err != nil {
		return err
	}
	var m manifestRefs
	if err := json.Unmarshal(body, &m); err != nil {
		return gantry.Errorf(gantry.EFAILED, "manifest %s is not valid JSON: %v", from, err)
	}
	if mt == "" || mt == "application/json" {
		mt = m.MediaType
	}
	switch mt {
	case MediaDockerList, MediaOCIIndex:
		for _, child := range m.Manifests {
			if !digestRE.MatchString(child.Digest) {
				return gantry.Errorf(gantry.EFAILED, "manifest %s names %q", from, child.Digest)
			}
			f, t := from, to
			f.Digest, t.Digest = child.Digest, child.Digest
			if err := c.copyManifest(ctx, f, t, depth+1); err != nil {
				return err
			}
		}
	case MediaDockerManifest, MediaOCIManifest:
		blobs := m.Layers
		if m.Config != nil {
			blobs = append([]descriptor{*m.Config}, blobs...)
		}
		for _, b := range blobs {
			if len(b.URLs) > 0 {
				continue // a foreign layer stays where its URLs say
			}
			if !digestRE.MatchString(b.Digest) {
				return gantry.Errorf(gantry.EFAILED, "manifest %s names blob %q", from, b.Digest)
			}
			if err := c.copyBlob(ctx, from, to, b); err != nil {
				return err
			}
		}
	default:
		return gantry.Errorf(gantry.EINVALID, "manifest %s: %v %q", from, errMediaType, mt)
	}
	return c.putManifest(ctx, to, to.Digest, mt, body)
}

// putManifest puts the manifest bytes under reference (a digest or a tag)
// and checks the digest the registry says it stored.
func (c *Client) putManifest(ctx context.Context, to Ref, reference, mediaType string, body []byte) error {
	u := c.base(to.Host) + "/v2/" + to.Repo + "/manifests/" + reference
	resp, err := c.do(ctx, http.MethodPut, u, bytes.NewReader(body), int64(len(body)), map[string]string{"Content-Type": mediaType})
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return statusError(resp, "put manifest "+to.Repository()+":"+reference)
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != to.Digest {
		return gantry.Errorf(gantry.EFAILED, "registry %s stored the manifest under digest %s, not %s", to.Host, got, to.Digest)
	}
	return nil
}

// copyBlob makes the destination have one blob: already there, mounted
// from the source repository on the same registry, or streamed across. The
// destination registry checks the digest of what it receives.
func (c *Client) copyBlob(ctx context.Context, from, to Ref, b descriptor) error {
	dst := c.base(to.Host) + "/v2/" + to.Repo + "/blobs/"
	resp, err := c.do(ctx, http.MethodHead, dst+b.Digest, nil, -1, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	start := dst + "uploads/"
	if from.Host == to.Host {
		start += "?" + url.Values{"mount": {b.Digest}, "from": {from.Repo}}.Encode()
	}
	resp, err = c.do(ctx, http.MethodPost, start, nil, 0, nil)
	if err != nil {
		return err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return nil // mounted
	case http.StatusAccepted:
	default:
		return statusError(resp, "start upload of "+b.Digest+" to "+to.Repository())
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return gantry.Errorf(gantry.EFAILED, "registry %s gave no upload location", to.Host)
	}
	q := loc.Query()
	q.Set("digest", b.Digest)
	loc.RawQuery = q.Encode()

	get, err := c.do(ctx, http.MethodGet, c.base(from.Host)+"/v2/"+from.Repo+"/blobs/"+b.Digest, nil, -1, nil)
	if err != nil {
		return err
	}
	defer get.Body.Close()
	if get.StatusCode != http.StatusOK {
		return statusError(get, "get blob "+b.Digest+" from "+from.Repository())
	}
	size := get.ContentLength
	if size < 0 {
		size = b.Size
	}
	put, err := c.do(ctx, http.MethodPut, loc.String(), get.Body, size, map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return err
	}
	defer put.Body.Close()
	if put.StatusCode != http.StatusCreated {
		return statusError(put, "upload blob "+b.Digest+" to "+to.Repository())
	}
	return nil
}
