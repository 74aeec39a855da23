package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"

	_ "modernc.org/sqlite"
)

// openAccessServer is openServer with a secrets key of its own (never the
// user's) and the server's log in logs.
func openAccessServer(t *testing.T, logs io.Writer) *Server {
	t.Helper()
	s := &Server{DataDir: t.TempDir(), Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0",
		SecretsKey: filepath.Join(t.TempDir(), "keys", "secrets.key"), Logger: newLogger(logs, "json")}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	registerSocket(t, s.APIURL, "unix://"+s.SocketPath)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.Orchestrator.StopAll(ctx); err != nil {
			t.Errorf("stop instances: %v", err)
		}
		s.Close()
	})
	return s
}

// cliAs runs the CLI against the server's TCP address with a token.
func cliAs(t *testing.T, s *Server, token string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		switch k {
		case "GANTRY_SERVER":
			return s.APIURL
		case "GANTRY_TOKEN":
			return token
		}
		return ""
	}}
	code := m.Run(context.Background(), args)
	return out.String(), errb.String(), code
}

func mustToken(t *testing.T, s *Server, name, role string, envs ...string) string {
	t.Helper()
	args := []string{"token", "create", name, "--role", role}
	for _, e := range envs {
		args = append(args, "--env", e)
	}
	out := mustCLI(t, "unix://"+s.SocketPath, args...) // the test is the server's user
	secret := strings.TrimSpace(out)
	if !strings.HasPrefix(secret, "gty_") {
		t.Fatalf("token create printed %q, want the secret", out)
	}
	return secret
}

// TestTokensAndAuditThroughTheCLI: tokens made on the socket work over TCP
// within their grant, every change and denial is audited under the token's
// name, and `gantry audit verify` catches an edit of the database.
func TestTokensAndAuditThroughTheCLI(t *testing.T) {
	s := openAccessServer(t, io.Discard)
	ci := mustToken(t, s, "ci-test", "deployer", "test")
	admin := mustToken(t, s, "ops", "admin")
	if _, errs, code := cliAs(t, s, "", "", "app", "list"); code != 1 || !strings.Contains(errs, "needs a token") {
		t.Errorf("no token over TCP: exit %d %q, want 1 and a hint", code, errs)
	}
	if _, errs, code := cliAs(t, s, "gty_wrong", "", "status", "--app", "x"); code != 1 || !strings.Contains(errs, "unknown token") {
		t.Errorf("unknown token: exit %d %q, want 1 unknown token", code, errs)
	}
	if _, _, code := cliAs(t, s, admin, "", "app", "add", "shop", "--repo", emptyRepo(t)); code != 0 {
		t.Fatalf("app add as ops: exit %d", code)
	}
	_, errs, code := cliAs(t, s, ci, "", "lock", "prod", "--app", "shop", "--reason", "x")
	if want := "token ci-test (deployer for test) lacks deploy on environment prod"; code != 4 || !strings.Contains(errs, want) {
		t.Errorf("lock prod as ci-test: exit %d %q, want 4 and %q", code, errs, want)
	}
	out, _, code := cliAs(t, s, admin, "", "token", "list", "--json")
	var tokens []gantry.Token
	if code != 0 || json.Unmarshal([]byte(out), &tokens) != nil || len(tokens) != 2 || strings.Contains(out, ci) {
		t.Errorf("token list: exit %d\n%s\nwant two tokens and no secret", code, out)
	}
	mustCLI(t, "unix://"+s.SocketPath, "token", "revoke", "ci-test")
	if _, _, code := cliAs(t, s, ci, "", "audit"); code != 1 {
		t.Errorf("revoked token: exit %d, want 1 (unauthorized)", code)
	}

	out, _, code = cliAs(t, s, admin, "", "audit", "--json")
	var entries []gantry.AuditEntry
	if code != 0 || json.Unmarshal([]byte(out), &entries) != nil {
		t.Fatalf("audit --json: exit %d\n%s", code, out)
	}
	var got []string
	for _, e := range entries {
		got = append(got, fmt.Sprintf("%s %s %s %s", e.Actor, shortOperation(e.Operation), e.Env, e.Result))
	}
	local := api.LocalIdentity(os.Getuid()).Name
	want := []string{
		local + " POST tokens  ok", local + " POST tokens  ok",
		"unauthenticated GET apps  denied", "unauthenticated GET environments  denied",
		"ops POST apps  ok", "ci-test POST lock prod denied",
		local + " DELETE tokens/{name}  ok", "unauthenticated GET audit  denied",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if out, _, code := cliAs(t, s, admin, "", "audit", "--env", "prod"); code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, "ci-test") {
		t.Errorf("audit --env prod: exit %d\n%s\nwant the one denial", code, out)
	}
	if out, _, code := cliAs(t, s, admin, "", "audit", "verify"); code != 0 || !strings.Contains(out, "intact") {
		t.Errorf("audit verify: exit %d %q, want 0 intact", code, out)
	}

	// Someone with the database file rewrites history.
	db, err := sql.Open("sqlite", s.Store.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{`DROP TRIGGER audit_no_update`, `UPDATE audit SET actor = 'ops' WHERE actor = 'ci-test'`} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	_, errs, code = cliAs(t, s, admin, "", "audit", "verify")
	if code != 1 || !regexp.MustCompile(`entry 6 .*changed`).MatchString(errs) {
		t.Errorf("audit verify after an edit: exit %d %q, want 1 naming entry 6 as changed", code, errs)
	}
}

// TestSecretNeverLeaks sets a secret on test, deploys an app that uses it,
// and searches every API response, CLI output, log line, dashboard page,
// audit entry and the state files for its value. It also checks that the
// value did reach the instances, so that the search is not vacuous.
func TestSecretNeverLeaks(t *testing.T) {
	needTools(t)
	const value = "s3cr3t-Zebra-7781-value"
	var logs syncWriter
	var logBuf bytes.Buffer
	logs.w = &logBuf
	s := openAccessServer(t, &logs)
	repo := helloRepo(t)
	manifest, err := os.ReadFile(filepath.Join(repo, "gantry.yml"))
	if err != nil {
		t.Fatal(err)
	}
	withSecret := strings.Replace(string(manifest), "    keep_warm: 10m\n", "    keep_warm: 10m\n    secrets: [API_KEY]\n", 1)
	commitChange(t, repo, "gantry.yml", withSecret, "use a secret on test")

	var seen strings.Builder // every byte the CLI and the API handed out
	admin := mustToken(t, s, "root", "admin")
	runAdmin := func(stdin string, args ...string) {
		t.Helper()
		out, errs, code := cliAs(t, s, admin, stdin, args...)
		if code != 0 {
			t.Fatalf("gantry %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
		}
		seen.WriteString(out + errs)
	}
	runAdmin("", "app", "add", "hello", "--repo", repo)
	runAdmin("", "deploy", "test", "--ref", "v1.0.0")
	runAdmin(value+"\n", "secret", "set", "test", "API_KEY")
	runAdmin("", "secret", "list", "test", "--json")
	runAdmin("", "deploy", "test", "--ref", "main", "--json")
	runAdmin("", "promote", "test", "prod", "--json")
	runAdmin("", "rollback", "test", "--json")
	runAdmin("", "deploy", "test", "--ref", "main")
	for _, args := range [][]string{
		{"status", "--json"}, {"history", "--json"}, {"history", "test"}, {"diff", "test", "prod", "--json"},
		{"release", "list", "--json"}, {"logs", "test", "web", "-n", "200"}, {"audit", "--json"}, {"lock", "test", "--reason", "check"},
		{"unlock", "test"},
	} {
		runAdmin("", args...)
	}
	if !strings.Contains(seen.String(), "API_KEY") {
		t.Errorf("secret list does not name API_KEY")
	}

	// The value reached the instances of test (their environment).
	env, err := s.Store.FindEnvironment(context.Background(), "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, in := range env.ActiveSlot().Instances {
		var h struct{ PID int }
		if json.Unmarshal([]byte(in.Handle), &h) == nil && h.PID > 0 {
			if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", h.PID)); err == nil && bytes.Contains(b, []byte("API_KEY="+value)) {
				delivered++
			}
		}
	}
	if delivered == 0 {
		t.Fatalf("no instance of test has API_KEY in its environment: the secret was not resolved")
	}

	// Every API read, raw.
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, s.APIURL+path, nil)
		req.Header.Set("Authorization", "Bearer "+admin)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		seen.WriteString(string(b))
	}
	var deps []gantry.Deployment
	for _, p := range []string{"/v1/apps", "/v1/apps/hello/releases", "/v1/apps/hello/environments", "/v1/apps/hello/environments/test",
		"/v1/apps/hello/environments/test/secrets", "/v1/apps/hello/diff?a=test&b=prod", "/v1/audit", "/v1/tokens",
		"/v1/apps/hello/environments/test/logs?tail=500"} {
		get(p)
	}
	if err := json.Unmarshal([]byte(mustCLI(t, s.APIURL, "history", "--json")), &deps); err != nil {
		t.Fatal(err)
	}
	for _, d := range deps {
		get(fmt.Sprintf("/v1/apps/hello/deployments/%d", d.ID))
	}

	// Every dashboard page, signed in.
	dash := dashboardPage(t, s, admin, &seen)
	page := func(path string) string {
		t.Helper()
		_, b := dash(path)
		return b
	}
	if p := page("/"); !strings.Contains(p, `id="env-test"`) {
		t.Fatalf("overview after sign-in:\n%.500s", p)
	}
	for _, p := range []string{"/apps/hello/releases", "/apps/hello/deployments", "/apps/hello/diff?a=test&b=prod"} {
		page(p)
	}
	for _, d := range deps {
		page(fmt.Sprintf("/apps/hello/deployments/%d", d.ID))
		page("/apps/hello/releases/" + d.ReleaseID)
	}

	// Search everything.
	places := map[string]string{"API responses, CLI output and pages": seen.String()}
	logs.mu.Lock()
	places["server log"] = logBuf.String()
	logs.mu.Unlock()
	for _, f := range []string{"state.db", "state.db-wal", "router.json"} {
		if b, err := os.ReadFile(filepath.Join(s.DataDir, f)); err == nil {
			places["state file "+f] = string(b)
		}
	}
	for where, text := range places {
		if strings.Contains(text, value) {
			i := strings.Index(text, value)
			t.Errorf("the secret's value appears in the %s: …%s…", where, text[max(0, i-200):min(len(text), i+len(value)+50)])
		}
	}
	if len(seen.String()) < 10000 || !strings.Contains(places["server log"], "route switched") {
		t.Errorf("searched %d bytes of output and %d of log: too little to mean anything", seen.Len(), len(places["server log"]))
	}
}
