package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/httplimit"
)

// apiTestLimits are small so that the test is short.
var apiTestLimits = httplimit.Limits{ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second, BodyTimeout: 2 * time.Second, BodyMinRate: 1024}

// apiCloseBound is how long a slow connection may stay open: one period,
// plus slack for a loaded machine.
const apiCloseBound = 2*time.Second + 1500*time.Millisecond

// TestAPISlowClientsAreClosed: 20 connections dripping a JSON body at
// 1 byte/s to the API, with a valid token, and an idle keep-alive
// connection are closed by the server within the configured bound, while a
// deploy whose progress streams for longer than that bound, through the
// same TCP listener, goes on to its end (issue 12, fact 7).
func TestAPISlowClientsAreClosed(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not on PATH")
	}
	s := &Server{DataDir: t.TempDir(), Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Limits: apiTestLimits,
		SecretsKey: filepath.Join(t.TempDir(), "keys", "secrets.key"), Logger: newLogger(testWriter{t}, "text")}
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
	admin := mustToken(t, s, "root", "admin")
	addr := strings.TrimPrefix(s.APIURL, "http://")

	// The deploy starts first and streams while the slow clients are cut.
	mustCLIAs(t, s, admin, "app", "add", "slow", "--repo", slowBuildRepo(t))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		out, errs, code := cliAs(t, s, admin, "", "deploy", "test", "--ref", "main", "--app", "slow")
		took := time.Since(start)
		if code != 0 || !strings.Contains(out+errs, "still building") || !strings.Contains(out+errs, "succeeded") {
			t.Errorf("deploy through the API: exit %d after %s\n%s%s", code, took, out, errs)
		} else if took < 3*apiTestLimits.BodyTimeout {
			t.Errorf("the deploy took %s: too short to test the limits", took)
		}
		t.Logf("deploy streamed for %s through the limited API", took.Round(10*time.Millisecond))
	}()

	wantClosed(t, "API", drip(t, addr, 20, 8*time.Second, func(i int) (string, string) {
		body := fmt.Sprintf(`{"name":"drip%d","repo":"/nonexistent"}`, i)
		return fmt.Sprintf("POST /v1/apps HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, admin, len(body)), body
	}))

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/apps HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\n\r\n", addr, admin)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	c.SetReadDeadline(start.Add(8 * time.Second))
	_, err = br.ReadByte()
	if idle := time.Since(start); err == nil || idle > apiCloseBound {
		t.Errorf("idle API connection: closed after %s (%v), want within %s", idle, err, apiCloseBound)
	}
	wg.Wait()
}

// drip opens n connections that each send the head of request(i) at once
// and then its body one byte a second, and returns how long each stayed
// open (at most wait): until the server closed it.
func drip(t *testing.T, addr string, n int, wait time.Duration, request func(i int) (head, body string)) []time.Duration {
	t.Helper()
	lifetimes := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			start := time.Now()
			head, body := request(i)
			io.WriteString(c, head)
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				for j := 0; j < len(body); j++ {
					select {
					case <-stop:
						return
					case <-time.After(time.Second):
						if _, err := c.Write([]byte{body[j]}); err != nil {
							return
						}
					}
				}
			}()
			c.SetReadDeadline(start.Add(wait))
			_, _ = io.Copy(io.Discard, c)
			lifetimes[i] = time.Since(start)
		}()
	}
	wg.Wait()
	return lifetimes
}

// wantClosed fails for every connection that lived past apiCloseBound.
func wantClosed(t *testing.T, what string, lifetimes []time.Duration) {
	t.Helper()
	open := 0
	var longest time.Duration
	for _, d := range lifetimes {
		longest = max(longest, d)
		if d > apiCloseBound {
			open++
		}
	}
	t.Logf("%d dripping connections to the %s: longest lived %s (bound %s)", len(lifetimes), what, longest.Round(10*time.Millisecond), apiCloseBound)
	if open > 0 {
		t.Errorf("%d of %d dripping connections to the %s were open longer than %s", open, len(lifetimes), what, apiCloseBound)
	}
}

// TestProxyRunSlowClients: `gantry proxy run` with --body-timeout 2s and
// --idle-timeout 2s closes 20 connections dripping a body at 1 byte/s
// within the bound, while a normal request still passes.
func TestProxyRunSlowClients(t *testing.T) {
	p := startProxy(t, "--body-timeout", "2s", "--body-min-rate", "1024", "--idle-timeout", "2s", "--read-header-timeout", "2s")
	MustProxyCLI(t, "proxy", "deploy", "shop/test", "--host", "test.shop.localhost", "--target", MustBackend(t, "a"), "--admin", p.admin)
	addr := p.addr("http")
	wantClosed(t, "router", drip(t, addr, 20, 8*time.Second, func(int) (string, string) {
		return "POST / HTTP/1.1\r\nHost: test.shop.localhost\r\nContent-Length: 1000\r\n\r\n", strings.Repeat("x", 1000)
	}))
	if code, body, err := hostGet(http.DefaultClient, addr, "test.shop.localhost", "/"); code != 200 || body != "a" {
		t.Errorf("a normal request after the slow ones: %d %q %v", code, body, err)
	}
}

// mustCLIAs runs the CLI over TCP with token and fails unless it exits 0.
func mustCLIAs(t *testing.T, s *Server, token string, args ...string) string {
	t.Helper()
	out, errs, code := cliAs(t, s, token, "", args...)
	if code != 0 {
		t.Fatalf("gantry %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

// slowBuildRepo is an app whose build prints a line a second for 6 s and
// whose one worker sleeps: a deploy that streams progress for a while.
func slowBuildRepo(t *testing.T) string {
	t.Helper()
	repo := filepath.Join(t.TempDir(), "slow")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("git", "init", "-q", "-b", "main", repo).CombinedOutput(); err != nil {
		t.Fatalf("git init: %v\n%s", err, out)
	}
	commitFiles(t, repo, "slow 1.0.0", map[string]string{
		"VERSION": "1.0.0\n",
		"gantry.yml": `app: slow
version: {scheme: semver}
services:
  worker:
    build:
      command: "for i in 1 2 3 4 5 6; do echo still building $i; sleep 1; done"
      artifacts: [VERSION]
    run: exec sleep 600
    http: false
    instances: 1
    ready_delay: 500ms
environments:
  test:
    hosts: [test.slow.localhost]
    runtime: {driver: process}
`,
	})
	return repo
}

// TestLimitFlagsRefuseZero: a limit of zero would switch a bound off; the
// flags of both listeners refuse it as a usage error.
func TestLimitFlagsRefuseZero(t *testing.T) {
	for _, args := range [][]string{
		{"server", "--body-timeout", "0s"},
		{"server", "--body-min-rate", "0"},
		{"proxy", "run", "--idle-timeout", "-1s"},
		{"proxy", "run", "--read-header-timeout", "0s"},
		{"proxy", "run", "--max-header-bytes", "10"},
	} {
		_, errs, code := runCLI(t, "http://127.0.0.1:1", args...)
		if code != 2 || !strings.Contains(errs, args[len(args)-2]) {
			t.Errorf("gantry %s: exit %d %q, want 2 naming the flag", strings.Join(args, " "), code, errs)
		}
	}
}
