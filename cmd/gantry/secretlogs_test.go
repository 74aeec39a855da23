package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestFailedInstanceLogsMaskSecrets: an instance that prints its secrets
// and exits before it is healthy fails the deploy, and the last log lines
// kept for the record hide every secret value, raw or URL-encoded: the
// value is nowhere in the CLI's output, history, the release's evidence,
// the dashboard's deployment page and its event stream, the server log,
// state.db and its WAL (issue 12, fact 5).
func TestFailedInstanceLogsMaskSecrets(t *testing.T) {
	needTools(t)
	const password = "Pa55-Zebra-9913-pw"
	const dbURL = "postgres://shop:" + password + "@127.0.0.1:1/shop"
	const apiKey = "k3y-Okapi-4417-value"
	var logs syncWriter
	var logBuf bytes.Buffer
	logs.w = &logBuf
	s := openAccessServer(t, &logs)
	repo := leakyRepo(t)

	var seen strings.Builder
	admin := mustToken(t, s, "root", "admin")
	run := func(stdin string, want int, args ...string) string {
		t.Helper()
		out, errs, code := cliAs(t, s, admin, stdin, args...)
		if code != want {
			t.Fatalf("gantry %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, out, errs)
		}
		seen.WriteString(out + errs)
		return out + errs
	}
	run("", 0, "app", "add", "leaky", "--repo", repo)
	run("", 0, "manifest", "check", repo+"/gantry.yml")
	run(dbURL+"\n", 0, "secret", "set", "test", "DATABASE_URL")
	run(apiKey+"\n", 0, "secret", "set", "test", "API_KEY")
	failed := run("", 1, "deploy", "test", "--ref", "main")
	if !strings.Contains(failed, "last log lines of web-1") || !strings.Contains(failed, "connecting to [secret]") {
		t.Errorf("the failed deploy does not show the instance's masked log lines:\n%s", failed)
	}
	hist := run("", 0, "history", "--json")
	run("", 0, "history", "test")
	run("", 0, "release", "show", "1.0.0", "--evidence", "--json")
	run("", 0, "release", "show", "1.0.0", "--evidence")
	var deps []gantry.Deployment
	if err := json.Unmarshal([]byte(hist), &deps); err != nil || len(deps) == 0 {
		t.Fatalf("history --json: %v\n%s", err, hist)
	}

	// The dashboard, signed in: the deployment page and its event stream.
	get := dashboardPage(t, s, admin, &seen)
	page := func(path string) string {
		t.Helper()
		code, b := get(path)
		if code != http.StatusOK {
			t.Fatalf("GET %s: %d\n%.300s", path, code, b)
		}
		return b
	}
	for _, d := range deps {
		if p := page(fmt.Sprintf("/apps/leaky/deployments/%d", d.ID)); !strings.Contains(p, "connecting to [secret]") {
			t.Errorf("deployment page %d lacks the masked log lines:\n%.2000s", d.ID, p)
		}
		if ev := page(fmt.Sprintf("/apps/leaky/deployments/%d/events", d.ID)); !strings.Contains(ev, "event: done") {
			t.Errorf("event stream of deployment %d did not end:\n%.500s", d.ID, ev)
		}
	}

	places := map[string]string{"CLI output, dashboard pages and events": seen.String()}
	logs.mu.Lock()
	places["server log"] = logBuf.String()
	logs.mu.Unlock()
	for _, f := range []string{"state.db", "state.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(s.DataDir, f)); err == nil {
			places["state file "+f] = string(b)
		}
	}
	for where, text := range places {
		for _, v := range []string{password, apiKey, url.QueryEscape(dbURL)} {
			if i := strings.Index(text, v); i >= 0 {
				t.Errorf("the secret %q appears in the %s: …%s…", v, where, text[max(0, i-200):min(len(text), i+len(v)+50)])
			}
		}
	}
	if !strings.Contains(places["state file state.db"]+places["state file state.db-wal"], "connecting to [secret]") {
		t.Errorf("the stored deployment does not keep the masked log lines")
	}
}

// leakyRepo is an app whose one web service prints its secrets, raw and
// URL-encoded, and exits 1 before it ever listens.
func leakyRepo(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "leaky")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "init", "-q", "-b", "main", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	commitFiles(t, repo, "leaky 1.0.0", map[string]string{
		"VERSION": "1.0.0\n",
		"gantry.yml": `app: leaky
version: {scheme: semver}
services:
  web:
    build:
      command: "true"
      artifacts: [run.sh, VERSION]
    run: ./run.sh
    http: true
    instances: 1
    health: {path: /up, interval: 100ms}
environments:
  test:
    hosts: [test.leaky.localhost]
    runtime: {driver: process}
    secrets: [DATABASE_URL, API_KEY]
`,
		"run.sh": `#!/bin/sh
echo "connecting to $DATABASE_URL"
echo "api key: $API_KEY"
printf 'encoded: %s\n' "$(printf %s "$DATABASE_URL" | sed 's/:/%3A/g; s#/#%2F#g; s/@/%40/g')"
echo "fatal: cannot reach the database" >&2
exit 1
`,
	})
	return repo
}
