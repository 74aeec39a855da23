package manifest_test

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/manifest"
)

// FuzzDecode checks that no input makes Decode panic, that every failure is a
// *manifest.Error coded invalid with positioned problems, and that every
// success satisfies the invariants the rest of Gantry relies on.
func FuzzDecode(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*", "*.yml"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, s := range seeds {
		f.Add(MustReadFile(f, s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := manifest.Decode("f.yml", data)
		if err != nil {
			var merr *manifest.Error
			if !errors.As(err, &merr) || len(merr.Problems) == 0 {
				t.Fatalf("error %T %q is not a *manifest.Error with problems", err, err)
			}
			if got := gantry.ErrorCode(err); got != gantry.EINVALID {
				t.Fatalf("ErrorCode = %q, want %q", got, gantry.EINVALID)
			}
			for _, p := range merr.Problems {
				if p.File != "f.yml" || p.Line < 1 || p.Column < 1 || p.Message == "" {
					t.Fatalf("problem %+v lacks a file, position or message", p)
				}
			}
			return
		}
		if m == nil || m.App == "" || len(m.Services) == 0 || len(m.Environments) == 0 {
			t.Fatalf("Decode succeeded with an incomplete manifest: %+v", m)
		}
		for name, s := range m.Services {
			if s == nil || s.Name != name || s.Run == "" || (s.Build == nil) == (s.Docker == nil) ||
				s.Instances < 1 || s.Instances > 100 || s.Stop.Signal == "" || s.Stop.Timeout <= 0 ||
				(s.HTTP && s.Health.Path == "") {
				t.Fatalf("service %q breaks an invariant: %+v", name, s)
			}
		}
		for name, e := range m.Environments {
			if e == nil || len(e.Hosts) == 0 || e.Runtime.Driver == "" || e.Strategy == "" ||
				e.PromoteFrom == name || (e.PromoteFrom != "" && m.Environments[e.PromoteFrom] == nil) {
				t.Fatalf("environment %q breaks an invariant: %+v", name, e)
			}
		}
		roundTrip(t, m)
	})
}

// roundTrip checks that Encode writes what Decode reads back unchanged.
func roundTrip(t *testing.T, m *gantry.Manifest) {
	t.Helper()
	out, err := manifest.Encode(m)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	back, err := manifest.Decode("encoded.yml", out)
	if err != nil {
		t.Fatalf("Decode(Encode(m)): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(back, m) {
		t.Fatalf("Decode(Encode(m)) differs from m\nencoded:\n%s\ngot:  %+v\nwant: %+v", out, back, m)
	}
}
