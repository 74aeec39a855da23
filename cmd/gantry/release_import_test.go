package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
)

// TestReleaseImport checks what the verb sends. The server side of
// POST /v1/apps/{app}/releases/import is not there yet, so a stand-in
// answers as it would.
func TestReleaseImport(t *testing.T) {
	digest := "sha256:" + strings.Repeat("4f", 32)
	web := "127.0.0.1:5000/shop/web@" + digest
	var got api.ImportRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/apps/shop/releases/import" {
			http.Error(w, `{"error":"no route","code":"not_found"}`, http.StatusNotFound)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(gantry.Release{ID: "r1", App: got.App, Version: got.Version, Commit: got.Commit,
			Artifacts: map[string]gantry.Artifact{"web": {Kind: gantry.ArtifactImage, Image: got.Images["web"], Digest: digest}}})
	}))
	defer srv.Close()

	out := mustCLI(t, srv.URL, "--app", "shop", "release", "import", "--service", "web="+web,
		"--service", "worker=127.0.0.1:5000/shop/worker@"+digest, "--version", "3.0.4", "--commit", "1a2b3c4", "--ref", "releases/3.0")
	want := api.ImportRequest{App: "shop", Version: "3.0.4", Commit: "1a2b3c4", Ref: "releases/3.0",
		Images: map[string]string{"web": web, "worker": "127.0.0.1:5000/shop/worker@" + digest}}
	if got.App != want.App || got.Version != want.Version || got.Commit != want.Commit || got.Ref != want.Ref ||
		len(got.Images) != 2 || got.Images["web"] != want.Images["web"] || got.Images["worker"] != want.Images["worker"] {
		t.Errorf("the server got %+v, want %+v", got, want)
	}
	if !strings.Contains(out, "web") || !strings.Contains(out, web) {
		t.Errorf("output lacks the imported image:\n%s", out)
	}
}

func TestReleaseImportUsage(t *testing.T) {
	digest := "sha256:" + strings.Repeat("4f", 32)
	good := "web=127.0.0.1:5000/shop/web@" + digest
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no service", []string{"--version", "1", "--commit", "1a2b3c4"}, "at least one --service"},
		{"by tag", []string{"--service", "web=127.0.0.1:5000/shop/web:1.0", "--version", "1", "--commit", "1a2b3c4"}, "never by tag"},
		{"no registry", []string{"--service", "web=web@" + digest, "--version", "1", "--commit", "1a2b3c4"}, "REGISTRY/REPOSITORY"},
		{"twice", []string{"--service", good, "--service", good, "--version", "1", "--commit", "1a2b3c4"}, "given twice"},
		{"bad name", []string{"--service", "Web=x", "--version", "1", "--commit", "1a2b3c4"}, "service name"},
		{"no version", []string{"--service", good, "--commit", "1a2b3c4"}, "--version is required"},
		{"no commit", []string{"--service", good, "--version", "1"}, "--commit is required"},
		{"bad commit", []string{"--service", good, "--version", "1", "--commit", "main"}, "not a commit id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, code := runCLI(t, "http://127.0.0.1:1", append([]string{"--app", "shop", "release", "import"}, tt.args...)...)
			if code != 2 || !strings.Contains(errs, tt.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, errs, tt.want)
			}
		})
	}
}
