// Package forgetest delivers webhooks to a Gantry server as GitHub, GitLab
// and Gitea/Forgejo do (bodies in their documented shapes, signed by each
// forge's scheme), and stands in for a forge's API where commit statuses
// are posted: FakeForge, a recording HTTP server, since no forge is
// reachable from the tests. Only tests import it.
package forgetest

import (
	"bytes"
	"embed"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/trigger"
)

//go:embed testdata/*.json
var payloads embed.FS

// Params fill a payload template.
type Params struct {
	Branch, Target, Commit, Action string
	Number                         int
	Deleted, Merged                bool
	// At is when the event happened (default now): Unix and Time render it.
	At time.Time
}

// Unix is At as Unix seconds.
func (p Params) Unix() int64 { return p.at().Unix() }

// Time is At as RFC 3339.
func (p Params) Time() string { return p.at().UTC().Format(time.RFC3339) }

func (p Params) at() time.Time {
	if p.At.IsZero() {
		return time.Now()
	}
	return p.At
}

// Payload renders testdata/<name>.json with p; the result is valid JSON.
func Payload(tb testing.TB, name string, p Params) []byte {
	tb.Helper()
	t, err := template.ParseFS(payloads, "testdata/"+name+".json")
	if err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, p); err != nil {
		tb.Fatal(err)
	}
	if !json.Valid(b.Bytes()) {
		tb.Fatalf("payload %s is not valid JSON:\n%s", name, b.String())
	}
	return b.Bytes()
}

// Delivery is one webhook request as a forge sends it.
type Delivery struct {
	Forge  string // github, gitlab, gitea; "forgejo" sends Gitea's payload with Forgejo's headers
	Event  string // the forge's event name: push, pull_request, Push Hook, Merge Request Hook, delete
	ID     string // the delivery id
	Secret string
	Body   []byte
	// Sign overrides the secret that signs (a bad signature); "" signs with Secret.
	Sign string
}

// Header returns the headers the forge would send with d.
func (d Delivery) Header() http.Header {
	key := d.Secret
	if d.Sign != "" {
		key = d.Sign
	}
	forge := d.Forge
	if forge == "forgejo" {
		forge = gantry.ForgeGitea
	}
	h := trigger.Sign(forge, key, d.Body)
	h.Set("Content-Type", "application/json")
	switch d.Forge {
	case gantry.ForgeGitHub:
		h.Set("User-Agent", "GitHub-Hookshot/abc123")
		h.Set("X-GitHub-Event", d.Event)
		h.Set("X-GitHub-Delivery", d.ID)
		h.Set("X-GitHub-Hook-ID", "292430182")
	case gantry.ForgeGitLab:
		h.Set("User-Agent", "GitLab/17.0.0")
		h.Set("X-Gitlab-Event", d.Event)
		h.Set("X-Gitlab-Event-UUID", d.ID)
		h.Set("X-Gitlab-Instance", "https://gitlab.example.com")
	case gantry.ForgeGitea:
		h.Set("X-Gitea-Event", d.Event)
		h.Set("X-Gitea-Delivery", d.ID)
		h.Set("X-GitHub-Event", d.Event) // Gitea sends GitHub's too
	case "forgejo":
		sig := h.Get("X-Gitea-Signature")
		h.Del("X-Gitea-Signature")
		h.Set("X-Forgejo-Signature", sig)
		h.Set("X-Forgejo-Event", d.Event)
		h.Set("X-Forgejo-Delivery", d.ID)
	}
	return h
}

// Send posts d to url and returns the status code and body.
func (d Delivery) Send(tb testing.TB, url string) (int, string) {
	tb.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(d.Body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header = d.Header()
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		tb.Fatalf("deliver %s %s: %v", d.Forge, d.Event, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Status is a commit status a FakeForge received.
type Status struct {
	Path   string
	Auth   string // the Authorization or PRIVATE-TOKEN header
	Fields map[string]string
}

// FakeForge stands in for a forge's API: it records the commit statuses
// posted to it and answers 201, as the forges do.
type FakeForge struct {
	URL string
	mu  sync.Mutex
	got []Status
}

// StartFakeForge starts a FakeForge, closed when the test ends.
func StartFakeForge(tb testing.TB) *FakeForge {
	f := &FakeForge{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var fields map[string]string
		if err := json.NewDecoder(r.Body).Decode(&fields); err != nil || r.Method != http.MethodPost {
			http.Error(w, "want a JSON POST", http.StatusBadRequest)
			return
		}
		auth := r.Header.Get("Authorization")
		if auth == "" {
			auth = r.Header.Get("PRIVATE-TOKEN")
		}
		f.mu.Lock()
		f.got = append(f.got, Status{Path: r.URL.Path, Auth: auth, Fields: fields})
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{}`))
	}))
	tb.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Statuses returns what was posted so far.
func (f *FakeForge) Statuses() []Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Status(nil), f.got...)
}

// Wait returns the first status that match accepts, waiting up to timeout.
func (f *FakeForge) Wait(tb testing.TB, timeout time.Duration, match func(Status) bool) Status {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, s := range f.Statuses() {
			if match(s) {
				return s
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no matching commit status within %s; got %+v", timeout, f.Statuses())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
