package tarball

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDeterministicRoundTrip(t *testing.T) {
	files := map[string]string{"bin/app": "#!/bin/sh\necho hi\n", "static/a.css": "a{}", "static/b.js": "b()", "VERSION": "1.0.0\n"}
	dirA, dirB := t.TempDir(), t.TempDir()
	writeFiles(t, dirA, files)
	writeFiles(t, dirB, files)
	// Different times and an extra file outside the listed paths change nothing.
	os.Chtimes(filepath.Join(dirB, "VERSION"), time.Now().Add(-time.Hour), time.Now().Add(-time.Hour))
	writeFiles(t, dirB, map[string]string{"unlisted.txt": "x"})
	var a, b bytes.Buffer
	if err := Write(&a, dirA, []string{"bin/app", "static", "VERSION"}); err != nil {
		t.Fatal(err)
	}
	if err := Write(&b, dirB, []string{"VERSION", "static", "bin/app"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("the same files in another order and with other times give another tarball")
	}
	out := t.TempDir()
	if err := Extract(bytes.NewReader(a.Bytes()), out); err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
	if fi, err := os.Stat(filepath.Join(out, "bin/app")); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("bin/app lost its execute bit: %v %v", fi.Mode(), err)
	}
	if _, err := os.Stat(filepath.Join(out, "unlisted.txt")); err == nil {
		t.Error("an unlisted file was packed")
	}
}

// TestWholeDirectory packs "." (artifacts: [.]): every file, and a
// tarball that extracts, with no entry for the root itself.
func TestWholeDirectory(t *testing.T) {
	files := map[string]string{"server.js": "x", "node_modules/a/index.js": "y"}
	dir := t.TempDir()
	writeFiles(t, dir, files)
	var buf bytes.Buffer
	if err := Write(&buf, dir, []string{"."}); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	if err := Extract(bytes.NewReader(buf.Bytes()), out); err != nil {
		t.Fatalf("extract a tarball of \".\": %v", err)
	}
	for name, want := range files {
		if got, err := os.ReadFile(filepath.Join(out, name)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", name, got, err, want)
		}
	}
}

func TestWriteRefusesEscapes(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"../x", "/etc/passwd", "a/../../x"} {
		if err := Write(&bytes.Buffer{}, dir, []string{p}); err == nil {
			t.Errorf("Write(%q) succeeded", p)
		}
	}
	if err := Write(&bytes.Buffer{}, dir, []string{"missing"}); err == nil {
		t.Error("Write of a missing path succeeded")
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	for _, name := range []string{"../evil", "/abs/evil", "a/../../evil"} {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
		tw.Write([]byte("x"))
		tw.Close()
		gz.Close()
		if err := Extract(&buf, t.TempDir()); err == nil || !strings.Contains(err.Error(), "outside") {
			t.Errorf("Extract of %q: err = %v, want outside", name, err)
		}
	}
}

func TestExtractTruncated(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"big": strings.Repeat("0123456789", 50_000)})
	var buf bytes.Buffer
	if err := Write(&buf, dir, []string{"big"}); err != nil {
		t.Fatal(err)
	}
	cut := buf.Bytes()[:buf.Len()/2]
	if err := Extract(bytes.NewReader(cut), t.TempDir()); err == nil {
		t.Error("a truncated tarball extracted without error")
	}
}
