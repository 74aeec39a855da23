package gantry

import (
	"context"
	"io"
	"time"
)

// Release is the immutable record of one build. It is never edited: a
// promotion deploys the very same Release, so its digests are what ran before.
type Release struct {
	ID      string `json:"id"`
	App     string `json:"app"`
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Ref     string `json:"ref,omitempty"`
	// Artifacts maps a service name to what was built for it.
	Artifacts map[string]Artifact `json:"artifacts"`
	// Manifest is the gantry.yml of the commit, byte for byte.
	Manifest       []byte    `json:"manifest"`
	ManifestDigest string    `json:"manifest_digest"`
	Builder        string    `json:"builder"`
	CreatedAt      time.Time `json:"created_at"`
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
