package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const goodManifest = `app: shop
services:
  web:
    build: {artifacts: [bin/web]}
    run: bin/web
environments:
  test:
  prod:
    promote_from: test
`

const badManifest = `app: shop
services:
  web:
    build: {artifacts: [bin/web]}
    run: bin/web
    instnaces: 2
environments:
  test:
    keep_warm: 10
`

// MustWriteManifest writes a gantry.yml into a new directory and returns its path.
func MustWriteManifest(tb testing.TB, content string) string {
	tb.Helper()
	path := filepath.Join(tb.TempDir(), "gantry.yml")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// runManifestCLI runs the real command tree in-process with buffers.
func runManifestCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	m := NewMain()
	m.Stdin, m.Stdout, m.Stderr = strings.NewReader(""), &out, &errb
	m.Getenv = func(string) string { return "" }
	code = m.Run(context.Background(), args)
	return code, out.String(), errb.String()
}

func TestManifestCheck(t *testing.T) {
	good, bad := MustWriteManifest(t, goodManifest), MustWriteManifest(t, badManifest)
	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout []string // substrings, in order
		wantStderr string
	}{
		{"ok", []string{"manifest", "check", good}, 0, []string{"ok: shop, 1 service, 2 environments\n"}, ""},
		{"directory", []string{"manifest", "check", filepath.Dir(good)}, 0, []string{"ok: shop"}, ""},
		{"problems", []string{"manifest", "check", bad}, 2, []string{
			bad + `:6:5: services.web.instnaces: unknown key "instnaces" (did you mean "instances"?)` + "\n",
			bad + ":9:16: environments.test.keep_warm: want a duration",
		}, bad + ": 2 problems"},
		{"missing", []string{"manifest", "check", filepath.Join(t.TempDir(), "nope.yml")}, 1, nil, "no manifest at"},
		{"too many args", []string{"manifest", "check", good, bad}, 2, nil, "accepts at most 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runManifestCLI(t, tt.args...)
			if code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stdout %q, stderr %q)", code, tt.wantCode, stdout, stderr)
			}
			rest := stdout
			for _, want := range tt.wantStdout {
				i := strings.Index(rest, want)
				if i < 0 {
					t.Errorf("stdout = %q, want it to contain %q", stdout, want)
					break
				}
				rest = rest[i+len(want):]
			}
			if !strings.Contains(stderr, tt.wantStderr) || (tt.wantStderr == "" && stderr != "") {
				t.Errorf("stderr = %q, want %q", stderr, tt.wantStderr)
			}
		})
	}
}

func TestManifestCheckDefaultPath(t *testing.T) {
	t.Chdir(filepath.Dir(MustWriteManifest(t, goodManifest)))
	code, stdout, stderr := runManifestCLI(t, "manifest", "check")
	if code != 0 || stdout != "ok: shop, 1 service, 2 environments\n" {
		t.Errorf("got exit %d, stdout %q, stderr %q; want 0 and the ok line", code, stdout, stderr)
	}
}

func TestManifestCheckJSON(t *testing.T) {
	type result struct {
		OK       bool   `json:"ok"`
		App      string `json:"app"`
		Problems []struct {
			File    string `json:"file"`
			Line    int    `json:"line"`
			Column  int    `json:"column"`
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"problems"`
	}
	good, bad := MustWriteManifest(t, goodManifest), MustWriteManifest(t, badManifest)

	code, stdout, _ := runManifestCLI(t, "--json", "manifest", "check", good)
	var r result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if code != 0 || !r.OK || r.App != "shop" || r.Problems == nil || len(r.Problems) != 0 {
		t.Errorf("good: exit %d, result %+v; want 0, ok, app shop, problems []", code, r)
	}

	code, stdout, _ = runManifestCLI(t, "manifest", "check", "--json", bad)
	r = result{}
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if code != 2 || r.OK || len(r.Problems) != 2 {
		t.Fatalf("bad: exit %d, result %+v; want 2, not ok, 2 problems", code, r)
	}
	p := r.Problems[0]
	if p.File != bad || p.Line != 6 || p.Column != 5 || p.Path != "services.web.instnaces" || !strings.Contains(p.Message, `did you mean "instances"?`) {
		t.Errorf("first problem = %+v, want %s:6:5 services.web.instnaces with a hint", p, bad)
	}
}

func TestManifestShow(t *testing.T) {
	good, bad := MustWriteManifest(t, goodManifest), MustWriteManifest(t, badManifest)

	code, stdout, stderr := runManifestCLI(t, "manifest", "show", good)
	for _, want := range []string{"app: shop\n", "      path: /up\n", "    keep_warm: 10m\n", "      - shop.localhost\n"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("show: stdout lacks %q:\n%s", want, stdout)
		}
	}
	if code != 0 || stderr != "" {
		t.Errorf("show: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}

	code, stdout, _ = runManifestCLI(t, "--json", "manifest", "show", good)
	var got struct {
		App          string                    `json:"app"`
		Environments map[string]map[string]any `json:"environments"`
	}
	if err := json.Unmarshal([]byte(stdout), &got); err != nil || code != 0 || got.App != "shop" || got.Environments["prod"]["promote_from"] != "test" {
		t.Errorf("show --json: exit %d, err %v, decoded %+v from:\n%s", code, err, got, stdout)
	}

	code, stdout, stderr = runManifestCLI(t, "manifest", "show", bad)
	if code != 2 || stdout != "" || !strings.Contains(stderr, bad+":6:5: services.web.instnaces: unknown key") {
		t.Errorf("show bad: exit %d, stdout %q, stderr %q; want 2 and the problems on stderr", code, stdout, stderr)
	}
}
