package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// release returns a release of app with every field set.
func release(app, id, version, commit string, at time.Time) *gantry.Release {
	return &gantry.Release{
		ID: id, App: app, Version: version, Commit: commit, Ref: "refs/heads/releases/3.0",
		Artifacts: map[string]gantry.Artifact{
			"web":    {Kind: gantry.ArtifactTarball, Digest: "sha256:" + strings.Repeat("a", 64), Size: 1234},
			"worker": {Kind: gantry.ArtifactImage, Digest: "sha256:" + strings.Repeat("b", 64), Image: "127.0.0.1:5000/shop@sha256:" + strings.Repeat("b", 64)},
		},
		// Bytes that are not text: the manifest is kept byte for byte.
		Manifest:       []byte("app: " + app + "\n\x00\xff\xfe"),
		ManifestDigest: "sha256:" + strings.Repeat("c", 64),
		Builder:        "ci",
		CreatedAt:      at,
		CommittedAt:    at.Add(-90*time.Minute - 250*time.Millisecond),
	}
}

var releaseTests = []test{
	{"CreateFind", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		want := f.mustCreateRelease(release("shop", "r-0a1b2c3d", "3.0.1", "0123abcd", T0.Add(1500*time.Millisecond)))
		got, err := f.s.FindRelease(f.ctx, "shop", "r-0a1b2c3d")
		mustOK(t, "FindRelease", err)
		sameJSON(t, "FindRelease", got, want)
	}},
	{"Defaults", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		r := &gantry.Release{ID: "r1", App: "shop", Version: "1.0.0"}
		f.mustCreateRelease(r)
		got, err := f.s.FindRelease(f.ctx, "shop", "r1")
		mustOK(t, "FindRelease", err)
		if !got.CreatedAt.Equal(T0) || !r.CreatedAt.Equal(T0) {
			t.Errorf("CreatedAt: got %v (stored %v), want the store's clock %v", r.CreatedAt, got.CreatedAt, T0)
		}
		if !got.CommittedAt.IsZero() {
			t.Errorf("CommittedAt: got %v, want zero (unknown) when none is given", got.CommittedAt)
		}
		if len(got.Manifest) != 0 || len(got.Artifacts) != 0 {
			t.Errorf("empty release: got manifest %q artifacts %v, want none", got.Manifest, got.Artifacts)
		}
	}},
	{"Immutable", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustCreateApp("api")
		want := f.mustCreateRelease(release("shop", "r1", "1.0.0", "c1", T0))
		for _, again := range []*gantry.Release{
			release("shop", "r1", "1.0.0", "c1", T0),
			release("shop", "r1", "9.9.9", "c2", T0.Add(time.Hour)),
			release("api", "r1", "1.0.0", "c1", T0),
		} {
			wantCode(t, "CreateRelease of an existing ID (app "+again.App+")", f.s.CreateRelease(f.ctx, again), gantry.ECONFLICT)
		}
		got, err := f.s.FindRelease(f.ctx, "shop", "r1")
		mustOK(t, "FindRelease", err)
		sameJSON(t, "release after refused overwrites", got, want)
	}},
	{"UnknownApp", func(t *testing.T, f *fixture) {
		err := f.s.CreateRelease(f.ctx, release("nope", "r1", "1.0.0", "c1", T0))
		wantCode(t, "CreateRelease for an unknown app", err, gantry.ENOTFOUND)
		wantCode(t, "CreateRelease without an ID", f.s.CreateRelease(f.ctx, &gantry.Release{App: "nope"}), gantry.EINVALID)
	}},
	{"Find", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustCreateApp("api")
		for _, r := range []*gantry.Release{
			release("shop", "0a1b2c3d4e", "3.0.0", "c1", T0),
			release("shop", "0a1b9999aa", "3.0.1", "c2", T0.Add(1*time.Minute)),
			release("shop", "5e6f7a8b9c", "3.0.1", "c3", T0.Add(2*time.Minute)), // rebuilt 3.0.1: the newest wins
			release("shop", "3.0.0", "9.9.9", "c4", T0.Add(3*time.Minute)),      // an ID that looks like a version
			release("shop", "77770000aa", "7777", "c5", T0.Add(4*time.Minute)),  // a version that is a prefix of an ID
			release("shop", "7777111111", "1.0.0", "c6", T0.Add(5*time.Minute)),
			release("api", "fedcba9876", "1.0.0", "c7", T0),
		} {
			f.mustCreateRelease(r)
		}
		tests := []struct {
			app, ref string
			want     string // the release ID found, or "" for ENOTFOUND
		}{
			{"shop", "0a1b2c3d4e", "0a1b2c3d4e"}, // the ID
			{"shop", "3.0.1", "5e6f7a8b9c"},      // the newest of the version
			{"shop", "3.0.0", "3.0.0"},           // an ID beats a version
			{"shop", "7777", "77770000aa"},       // a version beats a prefix
			{"shop", "5e6f", "5e6f7a8b9c"},       // a unique prefix of 4
			{"shop", "0a1b2c", "0a1b2c3d4e"},     // a longer unique prefix
			{"shop", "0a1b", ""},                 // ambiguous prefix
			{"shop", "5e6", ""},                  // too short a prefix
			{"shop", "5E6F", ""},                 // IDs are case-sensitive
			{"shop", "5e6f*", ""},                // no patterns
			{"shop", "fedcba9876", ""},           // another app's release
			{"shop", "", ""},                     // nothing
			{"nope", "0a1b2c3d4e", ""},           // unknown app
			{"api", "fedc", "fedcba9876"},        // a prefix within the right app
			{"shop", "0a1b2c3d4e0", ""},          // longer than the ID
		}
		for _, tt := range tests {
			got, err := f.s.FindRelease(f.ctx, tt.app, tt.ref)
			if tt.want == "" {
				wantCode(t, "FindRelease("+tt.app+", "+tt.ref+")", err, gantry.ENOTFOUND)
				continue
			}
			if err != nil {
				t.Errorf("FindRelease(%s, %q): %v, want %s", tt.app, tt.ref, err, tt.want)
			} else if got.ID != tt.want {
				t.Errorf("FindRelease(%s, %q): got %s, want %s", tt.app, tt.ref, got.ID, tt.want)
			}
		}
		_, err := f.s.FindRelease(f.ctx, "shop", "0a1b")
		if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "0a1b2c3d4e") || !strings.Contains(msg, "0a1b9999aa") {
			t.Errorf("ambiguous prefix: got message %q, want it to name both candidates", msg)
		}
	}},
	{"List", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		f.mustCreateApp("api")
		for _, r := range []*gantry.Release{
			release("shop", "s1", "1", "c1", T0),
			release("shop", "s3", "3", "c2", T0.Add(2*time.Minute)),
			release("shop", "s2", "2", "c1", T0.Add(1*time.Minute)),
			release("api", "a1", "1", "c1", T0.Add(3*time.Minute)),
			release("shop", "s4", "4", "c2", T0.Add(2*time.Minute)), // same time as s3, inserted later: newer
		} {
			f.mustCreateRelease(r)
		}
		tests := []struct {
			filter gantry.ReleaseFilter
			want   []string
		}{
			{gantry.ReleaseFilter{App: "shop"}, []string{"s4", "s3", "s2", "s1"}},
			{gantry.ReleaseFilter{App: "shop", Limit: 2}, []string{"s4", "s3"}},
			{gantry.ReleaseFilter{App: "shop", Commit: "c1"}, []string{"s2", "s1"}},
			{gantry.ReleaseFilter{Commit: "c1"}, []string{"a1", "s2", "s1"}},
			{gantry.ReleaseFilter{}, []string{"a1", "s4", "s3", "s2", "s1"}},
			{gantry.ReleaseFilter{App: "nope"}, []string{}},
		}
		for _, tt := range tests {
			rs, err := f.s.ListReleases(f.ctx, tt.filter)
			mustOK(t, "ListReleases", err)
			if got := releaseIDs(rs); !slices.Equal(got, tt.want) {
				t.Errorf("ListReleases(%+v): got %q, want %q", tt.filter, got, tt.want)
			}
		}
	}},
	{"ListDefaultLimit", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		for i := range 52 {
			f.mustCreateRelease(&gantry.Release{ID: fmt.Sprintf("r%02d", i), App: "shop", CreatedAt: T0.Add(time.Duration(i) * time.Second)})
		}
		rs, err := f.s.ListReleases(f.ctx, gantry.ReleaseFilter{App: "shop"})
		mustOK(t, "ListReleases", err)
		if len(rs) != 50 {
			t.Errorf("ListReleases without a limit: got %d releases, want the default 50", len(rs))
		}
	}},
}
