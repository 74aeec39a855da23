package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// lockedBuffer is a bytes.Buffer that a running proxy writes and a test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// servingLine finds the last "proxy serving" log line whose pid is not
// notPid, and returns its attributes.
func servingLine(log string, notPid int) (map[string]any, bool) {
	var found map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil || m["msg"] != "proxy serving" {
			continue
		}
		if pid, _ := m["pid"].(float64); int(pid) == notPid {
			continue
		}
		found = m
	}
	return found, found != nil
}

// waitServing waits until read() shows a process (other than notPid) serving.
func waitServing(tb testing.TB, read func() string, notPid int) map[string]any {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if m, ok := servingLine(read(), notPid); ok {
			return m
		}
		time.Sleep(10 * time.Millisecond)
	}
	tb.Fatalf("proxy did not report serving within 30s; log:\n%s", read())
	return nil
}

// inprocProxy is `gantry proxy run` running inside the test process.
type inprocProxy struct {
	admin, state string
	addrs        map[string]any
	stderr       *lockedBuffer
}

func (p *inprocProxy) addr(name string) string { s, _ := p.addrs[name].(string); return s }

// startProxy runs `gantry proxy run` in-process on loopback port 0, with
// extra flags, until the test ends.
func startProxy(tb testing.TB, extra ...string) *inprocProxy {
	tb.Helper()
	dir := tb.TempDir()
	p := &inprocProxy{
		admin:  filepath.Join(dir, "proxy.sock"),
		state:  filepath.Join(dir, "proxy.json"),
		stderr: &lockedBuffer{},
	}
	m := &Main{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: p.stderr, Getenv: os.Getenv}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	args := append([]string{"proxy", "run", "--listen", "127.0.0.1:0", "--admin", p.admin, "--state", p.state, "--pid-file", filepath.Join(dir, "proxy.pid")}, extra...)
	go func() { done <- m.Run(ctx, args) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				tb.Errorf("proxy run exited %d; log:\n%s", code, p.stderr.String())
			}
		case <-time.After(30 * time.Second):
			tb.Errorf("proxy run did not stop within 30s")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m, ok := servingLine(p.stderr.String(), 0); ok {
			p.addrs = m
			return p
		}
		select {
		case code := <-done:
			tb.Fatalf("proxy run exited %d before serving; log:\n%s", code, p.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("proxy did not serve within 30s; log:\n%s", p.stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// proxyCLI runs one gantry command in-process.
func proxyCLI(tb testing.TB, args ...string) (stdout, stderr string, code int) {
	tb.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	code = m.Run(ctx, args)
	return out.String(), errb.String(), code
}

// MustProxyCLI runs a command that must succeed and returns its stdout.
func MustProxyCLI(tb testing.TB, args ...string) string {
	tb.Helper()
	out, errOut, code := proxyCLI(tb, args...)
	if code != 0 {
		tb.Fatalf("gantry %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// MustBackend serves name on loopback (and 200 on /up) until the test ends.
func MustBackend(tb testing.TB, name string) string {
	tb.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, name)
	}))
	tb.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// hostGet requests http://addr/path with the given Host header.
func hostGet(client *http.Client, addr, host, path string) (int, string, error) {
	req, err := http.NewRequest("GET", "http://"+addr+path, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func TestProxyVerbs(t *testing.T) {
	p := startProxy(t)
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	adm := "--admin=" + p.admin
	steps := []struct {
		args     []string
		wantCode int
		wantOut  string // in stdout (or stderr on failure)
	}{
		{[]string{"proxy", "deploy", "shop/test", "--target", a, adm}, 2, "--host is required"},
		{[]string{"proxy", "deploy", "shop/test", "--host", "test.shop.localhost", adm}, 2, "--target is required"},
		{[]string{"proxy", "deploy", "shop/test", "--host", "test.shop.localhost", "--target", "nope", adm}, 2, `target "nope"`},
		{[]string{"proxy", "deploy", "shop/test", "--host", "test.shop.localhost", "--target", a, "--health-path", "/up", "--drain-timeout", "200ms", adm}, 0, "deployed shop/test to " + a},
		{[]string{"proxy", "deploy", "shop/test", "--host", "test.shop.localhost", "--target", b, "--health-path", "/up", "--drain-timeout", "200ms", adm}, 0, "(from " + a + ")"},
		{[]string{"proxy", "rollback", "shop/test", adm}, 0, "rolled back shop/test to " + a},
		{[]string{"proxy", "pause", "shop/test", "--writes-only", adm}, 0, "paused writes of shop/test"},
		{[]string{"proxy", "status", adm}, 0, "writes paused"},
		{[]string{"proxy", "resume", "shop/test", adm}, 0, "resumed shop/test"},
		{[]string{"proxy", "maintenance", "shop/test", "sideways", adm}, 2, "want on or off"},
		{[]string{"proxy", "maintenance", "shop/test", "on", "--message", "back at five", adm}, 0, "maintenance on for shop/test"},
		{[]string{"proxy", "status", adm}, 0, "maintenance"},
		{[]string{"proxy", "maintenance", "shop/test", "off", adm}, 0, "maintenance off"},
		{[]string{"proxy", "preview", "shop/test", "--target", b, adm}, 0, "preview of shop/test on " + b},
		{[]string{"proxy", "rollback", "nope/none", adm}, 1, `route "nope/none" not found`},
		{[]string{"proxy", "status", "--admin", filepath.Join(t.TempDir(), "missing.sock")}, 1, "not reachable"},
		{[]string{"proxy", "status", "extra", adm}, 2, "unknown command"},
	}
	for _, s := range steps {
		out, errOut, code := proxyCLI(t, s.args...)
		got := out
		if code != 0 {
			got = errOut
			if n := strings.Count(strings.TrimSpace(errOut), "\n"); n != 0 {
				t.Errorf("gantry %s: error is %d lines, want one: %q", strings.Join(s.args, " "), n+1, errOut)
			}
		}
		if code != s.wantCode || !strings.Contains(got, s.wantOut) {
			t.Errorf("gantry %s: got exit %d %q, want exit %d containing %q", strings.Join(s.args, " "), code, got, s.wantCode, s.wantOut)
		}
	}

	code, body, err := hostGet(http.DefaultClient, p.addr("http"), "test.shop.localhost", "/")
	if err != nil || code != 200 || body != "a" {
		t.Errorf("GET after the verbs: got %d %q %v, want 200 a", code, body, err)
	}

	var routes []gantry.RouteStatus
	if err := json.Unmarshal([]byte(MustProxyCLI(t, "proxy", "status", "--json", adm)), &routes); err != nil {
		t.Fatalf("status --json: %v", err)
	}
	if len(routes) != 1 || routes[0].Route.Name != "shop/test" || len(routes[0].Active) != 1 || routes[0].Active[0].Addr != a {
		t.Errorf("status --json: got %+v, want shop/test active on %s", routes, a)
	}

	// Every change reached the state file.
	raw, err := os.ReadFile(p.state)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"shop/test"`) || !strings.Contains(string(raw), b) {
		t.Errorf("state file lacks the route or its preview target %s:\n%s", b, raw)
	}
	MustProxyCLI(t, "proxy", "remove", "shop/test", adm)
	if out := MustProxyCLI(t, "proxy", "status", adm); !strings.Contains(out, "no routes") {
		t.Errorf("status after remove: got %q, want no routes", out)
	}
}

func TestProxyRunFlags(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	os.WriteFile(tokenFile, []byte("t0ken\n"), 0o600)
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--admin-tcp", "127.0.0.1:0"}, "needs --admin-token-file"},
		{[]string{"--admin-tcp", "0.0.0.0:7000", "--admin-token-file", tokenFile}, "loopback only"},
		{[]string{"--cert", "a.localhost=x.pem,y.pem"}, "need --tls-listen"},
		{[]string{"--tls-listen", "127.0.0.1:0"}, "needs --cert"},
		{[]string{"--tls-listen", "127.0.0.1:0", "--cert", "a.localhost"}, "want host=cert.pem,key.pem"},
		{[]string{"--tls-listen", "127.0.0.1:0", "--cert", "a.localhost=" + filepath.Join(dir, "none.pem") + ",k.pem"}, "none.pem"},
		{[]string{"--acme-email", "ops@example.com", "--tls-listen", "127.0.0.1:0"}, "needs --acme-directory"},
	}
	for _, tt := range tests {
		args := append([]string{"proxy", "run", "--listen", "127.0.0.1:0", "--admin", filepath.Join(dir, "s.sock"), "--state", filepath.Join(dir, "p.json"), "--pid-file", filepath.Join(dir, "p.pid")}, tt.args...)
		_, errOut, code := proxyCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("proxy run %v: got exit %d %q, want exit 2 containing %q", tt.args, code, errOut, tt.want)
		}
	}

	// A state file that does not parse stops the start and stays as it was.
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"routes": [`), 0o600)
	_, errOut, code := proxyCLI(t, "proxy", "run", "--listen", "127.0.0.1:0", "--admin", filepath.Join(dir, "s.sock"), "--state", bad, "--pid-file", filepath.Join(dir, "p.pid"))
	if code == 0 || !strings.Contains(errOut, "does not parse") {
		t.Errorf("bad state: got exit %d %q, want a failure saying it does not parse", code, errOut)
	}
	if got, _ := os.ReadFile(bad); string(got) != `{"routes": [` {
		t.Errorf("bad state file was changed to %q", got)
	}
}

func TestProxyAdminTCP(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startProxy(t, "--admin-tcp", "127.0.0.1:0", "--admin-token-file", tokenFile, "--metrics", "127.0.0.1:0")
	url := "--admin=http://" + p.addr("admin-tcp")
	if _, errOut, code := proxyCLI(t, "proxy", "status", url); code == 0 || !strings.Contains(errOut, "bearer token") {
		t.Errorf("status without the token: got exit %d %q, want a refusal", code, errOut)
	}
	a := MustBackend(t, "a")
	MustProxyCLI(t, "proxy", "deploy", "shop/test", "--host", "test.shop.localhost", "--target", a, url, "--admin-token-file", tokenFile)
	if out := MustProxyCLI(t, "proxy", "status", url, "--admin-token-file", tokenFile); !strings.Contains(out, a+" up") {
		t.Errorf("status over TCP: got %q, want %s up", out, a)
	}
	// The requests show in the metrics.
	if code, _, err := hostGet(http.DefaultClient, p.addr("http"), "test.shop.localhost", "/"); err != nil || code != 200 {
		t.Fatalf("GET: %d %v", code, err)
	}
	resp, err := http.Get("http://" + p.addr("metrics") + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "shop/test") {
		t.Errorf("metrics: got %d without shop/test:\n%.2000s", resp.StatusCode, body)
	}
}
