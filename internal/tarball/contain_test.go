package tarball

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestContained(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	for _, d := range []string{"out/v1", "data"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"out/current":  "v1",                   // inside
		"current":      "out/v1",               // inside, used as a parent
		"later":        "out/not-yet",          // dangling, inside
		"etcdir":       outside,                // absolute, outside
		"up":           "../../../../../../..", // relative, outside
		"data/away":    "../../elsewhere",      // dangling, outside
		"data/current": "../current",           // through another link, inside
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		path, link string // link: "" when contained, else the link named
	}{
		{"out", ""},
		{"current/x", ""},
		{"later", ""},
		{"missing/file", ""},
		{"etcdir/hostname", "etcdir"},
		{"etcdir", "etcdir"},
		{"up/etc", "up"},
		{"data", "data/away"},
		{"data/current/x", ""},
	} {
		err := Contained(root, []string{tt.path})
		var oe *OutsideError
		switch {
		case tt.link == "" && err != nil:
			t.Errorf("Contained(%s) = %v, want nil", tt.path, err)
		case tt.link != "" && (!errors.As(err, &oe) || oe.Link != tt.link || oe.Artifact != tt.path):
			t.Errorf("Contained(%s) = %v, want the link %s named", tt.path, err, tt.link)
		}
	}
}
