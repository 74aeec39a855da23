package build

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tarOf builds a tar stream from headers; regular files get body as content.
func tarOf(tb testing.TB, hdrs ...*tar.Header) *bytes.Buffer {
	tb.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := ""
		if h.Typeflag == tar.TypeReg {
			body = "content of " + h.Name
			h.Size = int64(len(body))
		}
		if err := tw.WriteHeader(h); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	return &buf
}

func TestExtractTarRefuses(t *testing.T) {
	tests := []struct {
		name string
		hdrs []*tar.Header
		want string
	}{
		{"parent dir", []*tar.Header{{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}}, "outside the export"},
		{"absolute", []*tar.Header{{Name: "/etc/evil", Typeflag: tar.TypeReg, Mode: 0o644}}, "outside the export"},
		{"through symlink", []*tar.Header{
			{Name: "link", Typeflag: tar.TypeSymlink, Linkname: "/tmp"},
			{Name: "link/evil", Typeflag: tar.TypeReg, Mode: 0o644},
		}, "through a symlink"},
		{"device", []*tar.Header{{Name: "dev", Typeflag: tar.TypeChar}}, "unsupported type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := t.TempDir()
			err := extractTar(tarOf(t, tt.hdrs...), dst)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestExtractTarModes(t *testing.T) {
	dst := t.TempDir()
	err := extractTar(tarOf(t,
		&tar.Header{Name: "pax_global_header", Typeflag: tar.TypeXGlobalHeader, PAXRecords: map[string]string{"comment": "abc"}},
		&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o775},
		&tar.Header{Name: "bin/run.sh", Typeflag: tar.TypeReg, Mode: 0o775},
		&tar.Header{Name: "README", Typeflag: tar.TypeReg, Mode: 0o664},
		&tar.Header{Name: "latest", Typeflag: tar.TypeSymlink, Linkname: "bin/run.sh"},
	), dst)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]os.FileMode{"bin/run.sh": 0o755, "README": 0o644} {
		fi, err := os.Stat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode = %v, want %v", name, got, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dst, "latest")); err != nil || target != "bin/run.sh" {
		t.Errorf("latest -> %q (%v), want bin/run.sh", target, err)
	}
	if _, err := os.Stat(filepath.Join(dst, "pax_global_header")); err == nil {
		t.Errorf("the global header was extracted as a file")
	}
}
