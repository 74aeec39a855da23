package trigger

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestStatusRequests: the commit status each forge's API documents, sent to
// a recording server standing in for the forge (none is reachable here).
func TestStatusRequests(t *testing.T) {
	type got struct {
		path, auth string
		body       map[string]string
	}
	var calls []got
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b map[string]string
		_ = json.NewDecoder(r.Body).Decode(&b)
		auth := r.Header.Get("Authorization")
		if auth == "" {
			auth = r.Header.Get("PRIVATE-TOKEN")
		}
		calls = append(calls, got{r.URL.Path, auth, b})
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	s := &Service{}
	cfg := &hookConfig{APIURL: srv.URL, APIToken: "tok"}
	for _, tc := range []struct {
		forge, repo, path, auth, nameKey, failState string
	}{
		{gantry.ForgeGitHub, "octo-org/hello", "/repos/octo-org/hello/statuses/abc", "Bearer tok", "context", "failure"},
		{gantry.ForgeGitea, "gitea/hello", "/repos/gitea/hello/statuses/abc", "token tok", "context", "failure"},
		{gantry.ForgeGitLab, "15", "/projects/15/statuses/abc", "tok", "name", "failed"},
	} {
		calls = nil
		ev := &Event{Forge: tc.forge, Repo: tc.repo, Commit: "abc"}
		s.status(context.Background(), cfg, ev, "gantry/preview", statusSuccess, "http://x.preview.localhost:8080", "ready")
		s.status(context.Background(), cfg, ev, "gantry/preview", statusFailure, "", "broken")
		if len(calls) != 2 {
			t.Fatalf("%s: %d calls, want 2", tc.forge, len(calls))
		}
		ok, fail := calls[0], calls[1]
		if ok.path != tc.path || ok.auth != tc.auth || ok.body["state"] != "success" || ok.body[tc.nameKey] != "gantry/preview" || ok.body["target_url"] != "http://x.preview.localhost:8080" {
			t.Errorf("%s success: %+v", tc.forge, ok)
		}
		if fail.body["state"] != tc.failState || fail.body["description"] != "broken" {
			t.Errorf("%s failure: %+v", tc.forge, fail)
		}
	}
	// Without an API token nothing is sent.
	calls = nil
	s.status(context.Background(), &hookConfig{APIURL: srv.URL}, &Event{Forge: gantry.ForgeGitHub, Repo: "o/r", Commit: "abc"}, "gantry/build", statusSuccess, "", "")
	if len(calls) != 0 {
		t.Errorf("a hook without an API token posted %d statuses", len(calls))
	}
}

func TestDefaultAPI(t *testing.T) {
	for _, tc := range []struct{ forge, web, want string }{
		{gantry.ForgeGitHub, "https://github.com/o/r", "https://api.github.com"},
		{gantry.ForgeGitLab, "https://gitlab.example.com/mike/hello", "https://gitlab.example.com/api/v4"},
		{gantry.ForgeGitea, "https://codeberg.org/o/r", "https://codeberg.org/api/v1"},
	} {
		if got := defaultAPI(&Event{Forge: tc.forge, WebURL: tc.web}); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.forge, got, tc.want)
		}
	}
}
