package gantry

import (
	"context"
	"io"
	"sort"
	"strings"
	"time"
)

// Release is the immutable record of one build. It is never edited: a
// promotion deploys the very same Release, so its digests are what ran before.
type Release struct {
	ID      string `json:"id"`
	App     string `json:"app"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
	// CommittedAt is the committer time of Commit, where the release's
	// delivery starts: lead time runs from it to the release serving.
	// Zero when unknown (a release imported without it, or made before
	// Gantry recorded it).
	CommittedAt time.Time `json:"committed_at,omitempty"`
	Ref         string    `json:"ref,omitempty"`
	// Artifacts maps a service name to what was built for it. Keys that
	// start with "@" are not services but files kept with the release
	// (SourceArtifact, MigrationsArtifact); see ServiceNames.
	Artifacts map[string]Artifact `json:"artifacts"`
	// Manifest is the gantry.yml of the commit, byte for byte.
	Manifest       []byte    `json:"manifest"`
	ManifestDigest string    `json:"manifest_digest"`
	Builder        string    `json:"builder"`
	CreatedAt      time.Time `json:"created_at"`
}

// SourceArtifact is the key, in Release.Artifacts, of the tarball of the
// clean export of the release's commit, taken before any build command ran.
// Verify commands and hooks run in an unpacked copy of it, so that
// ./scripts/smoke.sh is the script of the commit deployed, never a file of
// the server's working directory. It cannot collide with a service: service
// names never start with "@".
const SourceArtifact = "@source"

// IsReservedArtifact reports whether key names files kept with a release
// (SourceArtifact, MigrationsArtifact) rather than a service's build.
func IsReservedArtifact(key string) bool { return strings.HasPrefix(key, "@") }

// ServiceNames returns the sorted names of the services the release has
// artifacts for, leaving out the reserved "@" keys: the place to go for any
// code that treats artifact keys as services.
func (r *Release) ServiceNames() []string {
	names := make([]string, 0, len(r.Artifacts))
	for k := range r.Artifacts {
		if !IsReservedArtifact(k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	return names
}

// Artifact kinds.
const (
	ArtifactTarball = "tarball"
	ArtifactImage   = "image"
)

// Artifact is one service's build output, addressed by content.
type Artifact struct {
	Kind   string `json:"kind"`
	Digest string `json:"digest"`          // "sha256:<hex>"
	Image  string `json:"image,omitempty"` // repository@sha256:… for image artifacts
	Size   int64  `json:"size,omitempty"`
	// Version is the service's own version when it has one
	// (services.<service>.version_file or a "<service>/v…" tag); empty
	// means the release's.
	Version string `json:"version,omitempty"`
}

// ServiceVersion is the version of service in r: its own, else r's.
func (r *Release) ServiceVersion(service string) string {
	if a, ok := r.Artifacts[service]; ok && a.Version != "" {
		return a.Version
	}
	return r.Version
}

// ReleaseFilter narrows ListReleases.
type ReleaseFilter struct {
	App    string
	Commit string
	Limit  int
}

// ArtifactStore keeps artifacts by digest. Put verifies nothing about the
// content beyond computing its digest; Open verifies the digest on read so a
// corrupted artifact is never deployed.
type ArtifactStore interface {
	Put(ctx context.Context, r io.Reader) (digest string, size int64, err error)
	Open(ctx context.Context, digest string) (io.ReadCloser, error)
	Has(ctx context.Context, digest string) (bool, error)
}

// OneRelease is what a lookup of ref among an app's releases found: the one
// match, or ENOTFOUND saying none matched or which ones make ref ambiguous.
// Every Store resolves a ref (an ID, its prefix or a version) through it.
func OneRelease(app, ref string, matches []*Release) (*Release, error) {
	switch len(matches) {
	case 0:
		return nil, Errorf(ENOTFOUND, "release %q of app %q not found", ref, app)
	case 1:
		return matches[0], nil
	}
	ids := []string{matches[0].ID, matches[1].ID}
	more := ""
	if len(matches) > 2 {
		more = ", …"
	}
	return nil, Errorf(ENOTFOUND, "release %q of app %q is ambiguous: it matches %s%s; give more of the ID",
		ref, app, strings.Join(ids, ", "), more)
}
