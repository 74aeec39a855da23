package hook_test

import (
	"bytes"
	"flag"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/hook"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fixedNow is the clock of every test runner, so bodies are reproducible.
var fixedNow = time.Date(2026, 3, 16, 9, 30, 0, 0, time.UTC)

// syncBuffer collects log output from concurrent notifications.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// MustRunner returns a runner that does not wait between attempts, logs into
// the returned buffer, and records the attempts it was asked to back off
// after.
func MustRunner(tb testing.TB) (*hook.Runner, *syncBuffer) {
	tb.Helper()
	logs := &syncBuffer{}
	r := &hook.Runner{
		Logger:   slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Attempts: 5,
		Backoff:  func(int) time.Duration { return 0 },
		Now:      func() time.Time { return fixedNow },
	}
	return r, logs
}

// request is what a test server saw of one request.
type request struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// recorder is a webhook receiver on 127.0.0.1 that answers with the
// statuses it is given, in order, then 200.
type recorder struct {
	mu       sync.Mutex
	statuses []int
	reqs     []request
	srv      *httptest.Server
}

// MustRecorder starts a receiver answering statuses in turn, then 200.
func MustRecorder(tb testing.TB, statuses ...int) *recorder {
	tb.Helper()
	rec := &recorder{statuses: statuses}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, request{Method: r.Method, Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		status := http.StatusOK
		if len(rec.statuses) > 0 {
			status, rec.statuses = rec.statuses[0], rec.statuses[1:]
		}
		rec.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, http.StatusText(status))
	}))
	tb.Cleanup(rec.srv.Close)
	return rec
}

func (rec *recorder) URL() string { return rec.srv.URL }

func (rec *recorder) requests() []request {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]request(nil), rec.reqs...)
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(tb testing.TB, name string, got []byte) {
	tb.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		tb.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

// sampleContext is a deployment's after_switch phase.
func sampleContext() hook.Context {
	return hook.Context{
		App: "shop", Env: "prod", Release: "rel-7f3a", Version: "16.03.1b",
		Commit: "0123456789abcdef0123456789abcdef01234567", Actor: "alice",
		Phase: "after_switch", DeploymentID: 42, URL: "http://shop.localhost:8080",
	}
}
