package build

import (
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func TestDeriveVersion(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		scheme      string
		override    string
		versionFile string
		tags        []string
		ref         string
		want        string
	}{
		// semver
		{"semver override wins", "semver", "2.0.0", "1.0.0", []string{"v3.0.0"}, "main", "2.0.0"},
		{"semver override v stripped", "semver", "v2.0.0-rc.1", "", nil, "main", "2.0.0-rc.1"},
		{"semver VERSION file", "semver", "", "1.4.2\n", []string{"v3.0.0"}, "main", "1.4.2"},
		{"semver VERSION with pre and meta", "semver", "", "1.4.2-beta.2+build.7", nil, "main", "1.4.2-beta.2+build.7"},
		{"semver tag", "semver", "", "", []string{"latest", "v1.2.3"}, "main", "1.2.3"},
		{"semver highest tag", "semver", "", "", []string{"v1.10.0", "v1.9.0", "v1.10.0-rc.1"}, "main", "1.10.0"},
		{"semver prerelease order", "semver", "", "", []string{"v1.0.0-alpha.10", "v1.0.0-alpha.9", "v1.0.0-alpha"}, "main", "1.0.0-alpha.10"},
		{"scheme defaults to semver", "", "", "0.1.0", nil, "main", "0.1.0"},
		// calver
		{"calver override", "calver", "26.11.3", "", nil, "main", "26.11.3"},
		{"calver hotfix branch", "calver", "", "", nil, "hotfix/16.03.1b", "16.03.1b"},
		{"calver release branch", "calver", "", "", nil, "releases/16.03.1", "16.03.1"},
		{"calver bare ref", "calver", "", "", nil, "16.03.2", "16.03.2"},
		{"calver ref beats tag", "calver", "", "", []string{"16.03.1"}, "hotfix/16.03.1c", "16.03.1c"},
		{"calver tag", "calver", "", "", []string{"junk", "16.03.1", "16.03.1b"}, "main", "16.03.1b"},
		{"calver later hotfix letters", "calver", "", "", []string{"16.03.1z", "16.03.1aa"}, "main", "16.03.1aa"},
		{"calver VERSION file last", "calver", "", "26.10.4\n", nil, "main", "26.10.4"},
		{"calver next month allowed", "calver", "26.12.0", "", nil, "main", "26.12.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DeriveVersion(tt.scheme, tt.override, tt.versionFile, tt.tags, tt.ref, now)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDeriveVersionErrors(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		scheme      string
		override    string
		versionFile string
		tags        []string
		ref         string
		contains    []string
	}{
		{"semver nothing", "semver", "", "", []string{"latest"}, "main", []string{"--version", "VERSION", "vX.Y.Z tag", "latest"}},
		{"semver bad override", "semver", "1.2", "", nil, "main", []string{`"1.2"`, "X.Y.Z"}},
		{"semver leading zero", "semver", "1.02.0", "", nil, "main", []string{`"1.02.0"`}},
		{"semver bad VERSION", "semver", "", "one", nil, "main", []string{"VERSION file", `"one"`}},
		{"calver nothing", "calver", "", "", nil, "main", []string{"--version", `"main"`, "hotfix/16.03.1b", "VERSION"}},
		{"calver bad override", "calver", "16.3.1", "", nil, "main", []string{`"16.3.1"`, "YY.MM.R"}},
		{"calver uppercase hotfix", "calver", "16.03.1B", "", nil, "main", []string{`"16.03.1B"`}},
		{"calver month 13", "calver", "16.13.1", "", nil, "main", []string{`"16.13.1"`}},
		{"calver bad VERSION", "calver", "", "1.0.0", nil, "main", []string{"VERSION file", `"1.0.0"`}},
		{"calver in the future", "calver", "27.03.1", "", nil, "main", []string{"27.03.1", "after today"}},
		{"unknown scheme", "date", "", "", nil, "main", []string{`"date"`, "semver or calver"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DeriveVersion(tt.scheme, tt.override, tt.versionFile, tt.tags, tt.ref, now)
			if err == nil {
				t.Fatalf("got version %q, want an error", got)
			}
			wantCode(t, err, gantry.EINVALID)
			msg := gantry.ErrorMessage(err)
			for _, s := range tt.contains {
				if !strings.Contains(msg, s) {
					t.Errorf("error %q does not mention %q", msg, s)
				}
			}
		})
	}
}

func TestValidVersions(t *testing.T) {
	semver := map[string]bool{
		"0.0.0": true, "1.2.3": true, "1.2.3-rc.1": true, "1.2.3+sha.abc": true, "1.2.3-0a.1+x-y": true,
		"1.2": false, "01.2.3": false, "1.2.3-01": false, "v1.2.3": false, "1.2.3-": false, "1.2.3+": false, "": false,
	}
	for v, want := range semver {
		if got := ValidSemver(v); got != want {
			t.Errorf("ValidSemver(%q) = %v, want %v", v, got, want)
		}
	}
	calver := map[string]bool{
		"16.03.1": true, "16.03.1b": true, "16.12.0": true, "16.03.10ab": true,
		"16.3.1": false, "2016.03.1": false, "16.00.1": false, "16.03.01": false, "16.03.1B": false, "16.03": false, "16.03.1-b": false,
	}
	for v, want := range calver {
		if got := ValidCalver(v); got != want {
			t.Errorf("ValidCalver(%q) = %v, want %v", v, got, want)
		}
	}
}
