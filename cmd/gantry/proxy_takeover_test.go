package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/proxy"
	"github.com/gantry-dev/gantry/proxy/admin"
)

// binProxy is `gantry proxy run` from the built binary.
type binProxy struct {
	dir, admin, state, pidFile, logFile string
	cmd                                 *exec.Cmd
	exited                              chan error
}

func (p *binProxy) log() string { b, _ := os.ReadFile(p.logFile); return string(b) }

// startBinProxy runs the gantry binary's proxy in dir. Its output goes to a
// file, not a pipe: a takeover child inherits it and outlives the process
// the test started.
func startBinProxy(tb testing.TB, bin, dir string, extra ...string) *binProxy {
	tb.Helper()
	p := &binProxy{
		dir:     dir,
		admin:   filepath.Join(dir, "proxy.sock"),
		state:   filepath.Join(dir, "proxy.json"),
		pidFile: filepath.Join(dir, "proxy.pid"),
		logFile: filepath.Join(dir, fmt.Sprintf("proxy-%d.log", time.Now().UnixNano())),
		exited:  make(chan error, 1),
	}
	logf, err := os.Create(p.logFile)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	args := append([]string{"proxy", "run", "--listen", "127.0.0.1:0", "--admin", p.admin, "--state", p.state, "--pid-file", p.pidFile, "--shutdown-timeout", "10s"}, extra...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Dir = dir
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	tb.Cleanup(func() {
		// The process serving now may be a takeover child: stop it by
		// the pid it wrote, and the one we started by its handle.
		if pid := readPid(p.pidFile); pid > 0 && pid != p.cmd.Process.Pid {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

func readPid(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// loader puts bounded concurrent GET load on a host through the proxy and
// counts what fails.
type loader struct {
	ok, failed, refused atomic.Int64
	mu                  sync.Mutex
	errs                []string
	stop                chan struct{}
	wg                  sync.WaitGroup
}

func startLoad(addr, host, want string, workers int) *loader {
	l := &loader{stop: make(chan struct{})}
	for i := range workers {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			// Half the workers reuse connections, half open one per
			// request: both kinds must survive the takeover.
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: i%2 == 1}}
			defer client.CloseIdleConnections()
			for {
				select {
				case <-l.stop:
					return
				default:
				}
				code, body, err := hostGet(client, addr, host, "/")
				switch {
				case err == nil && code == 200 && body == want:
					l.ok.Add(1)
					continue
				case errors.Is(err, syscall.ECONNREFUSED):
					l.refused.Add(1)
				default:
					l.failed.Add(1)
				}
				l.mu.Lock()
				if len(l.errs) < 5 {
					l.errs = append(l.errs, fmt.Sprintf("%d %q %v", code, body, err))
				}
				l.mu.Unlock()
			}
		}()
	}
	return l
}

// waitOK waits until n more requests have succeeded.
func (l *loader) waitOK(tb testing.TB, n int64) {
	tb.Helper()
	target := l.ok.Load() + n
	deadline := time.Now().Add(30 * time.Second)
	for l.ok.Load() < target {
		if time.Now().After(deadline) {
			tb.Fatalf("load: %d requests succeeded, want %d within 30s (failed %d)", l.ok.Load(), target, l.failed.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *loader) finish() {
	close(l.stop)
	l.wg.Wait()
}

// TestProxyTakeoverUnderLoad restarts the proxy with SIGHUP while clients
// keep requesting: no connection may be refused and no request may fail.
func TestProxyTakeoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gantry binary")
	}
	bin := gantryBinary(t)
	p := startBinProxy(t, bin, t.TempDir())
	first := waitServing(t, p.log, 0)
	addr, _ := first["http"].(string)
	// A backend that takes a few milliseconds keeps requests in flight
	// in the old process when it stops: they must complete.
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(5 * time.Millisecond)
		fmt.Fprint(w, "v1")
	}))
	defer slow.Close()
	backend := strings.TrimPrefix(slow.URL, "http://")
	out, err := exec.Command(bin, "proxy", "deploy", "shop/test", "--host", "test.shop.localhost", "--target", backend,
		"--health-path", "/up", "--admin", p.admin).CombinedOutput()
	if err != nil {
		t.Fatalf("gantry proxy deploy: %v: %s", err, out)
	}

	load := startLoad(addr, "test.shop.localhost", "v1", 8)
	// The admin API stays answerable too: calls queue on the socket
	// while no process accepts, and the new process answers them.
	var adminOK, adminFailed atomic.Int64
	var adminErr atomic.Value
	adminStop := make(chan struct{})
	adminDone := make(chan struct{})
	go func() {
		defer close(adminDone)
		c := admin.NewClient(p.admin, "")
		defer c.Close()
		for {
			select {
			case <-adminStop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			routes, err := c.Status(ctx)
			cancel()
			if err != nil || len(routes) != 1 {
				adminFailed.Add(1)
				adminErr.CompareAndSwap(nil, fmt.Sprintf("%d routes, %v", len(routes), err))
				continue
			}
			adminOK.Add(1)
		}
	}()
	load.waitOK(t, 200)
	oldPid := p.cmd.Process.Pid
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			t.Errorf("old process after the takeover: %v, want exit 0", err)
		}
		p.exited <- err // for the cleanup
	case <-time.After(30 * time.Second):
		t.Fatalf("old process still running 30s after SIGHUP; log:\n%s", p.log())
	}
	next := waitServing(t, p.log, oldPid)
	// Keep loading the new process for a while: 500 requests and a second.
	keepUntil := time.Now().Add(time.Second)
	load.waitOK(t, 500)
	waitFor(t, "a second of load on the new process", func() bool { return time.Now().After(keepUntil) })
	load.finish()
	close(adminStop)
	<-adminDone
	if n := adminFailed.Load(); n != 0 || adminOK.Load() == 0 {
		t.Errorf("admin calls across the takeover: %d ok, %d failed (first: %v); want none failed", adminOK.Load(), n, adminErr.Load())
	}

	if n := load.refused.Load(); n != 0 {
		t.Errorf("refused connections: got %d, want 0 (%q)", n, load.errs)
	}
	if n := load.failed.Load(); n != 0 {
		t.Errorf("failed requests: got %d, want 0 (%q)", n, load.errs)
	}
	t.Logf("requests: %d ok, %d failed, %d refused", load.ok.Load(), load.failed.Load(), load.refused.Load())

	newPid := readPid(p.pidFile)
	if newPid == 0 || newPid == oldPid || next["takeover"] != true {
		t.Errorf("after the takeover: pid file says %d (old %d), serving line %v; want a new process that took over", newPid, oldPid, next)
	}
	if next["http"] != addr {
		t.Errorf("new process serves %v, want the same address %s", next["http"], addr)
	}

	// The new process answers the admin socket, with the routes it restored.
	c := admin.NewClient(p.admin, "")
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v2 := MustBackend(t, "v2")
	if _, err := c.Deploy(ctx, gantry.Route{Name: "shop/test", Hosts: []string{"test.shop.localhost"}}, []string{v2}); err != nil {
		t.Fatalf("deploy through the new process: %v", err)
	}
	if code, body, err := hostGet(http.DefaultClient, addr, "test.shop.localhost", "/"); err != nil || code != 200 || body != "v2" {
		t.Errorf("after a deploy on the new process: got %d %q %v, want 200 v2", code, body, err)
	}

	// SIGTERM stops the new process cleanly: it removes its pid file.
	syscall.Kill(newPid, syscall.SIGTERM)
	deadline := time.Now().Add(30 * time.Second)
	for readPid(p.pidFile) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("new process did not stop within 30s of SIGTERM")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestProxyKill9LeavesState kills the proxy with SIGKILL while routes keep
// changing; the state file must parse every time, and the next process
// must serve the routes it holds.
func TestProxyKill9LeavesState(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gantry binary")
	}
	dir := t.TempDir()
	a, b := MustBackend(t, "a"), MustBackend(t, "b")
	route := gantry.Route{Name: "shop/test", Hosts: []string{"test.shop.localhost"}, DrainTimeout: 50 * time.Millisecond}
	for round := range 3 {
		p := startBinProxy(t, gantryBinary(t), dir)
		serving := waitServing(t, p.log, 0)
		addr, _ := serving["http"].(string)
		if round > 0 {
			// Restored at start: the route serves without a deploy.
			code, body, err := hostGet(http.DefaultClient, addr, "test.shop.localhost", "/")
			if err != nil || code != 200 || (body != "a" && body != "b") {
				t.Fatalf("round %d: restored route: got %d %q %v, want 200 from a or b", round, code, body, err)
			}
		}
		c := admin.NewClient(p.admin, "")
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		var changes atomic.Int64
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				target := []string{a, b}[i%2]
				var err error
				switch i % 3 {
				case 0, 1:
					_, err = c.Deploy(ctx, route, []string{target})
				case 2:
					err = c.Maintenance(ctx, route.Name, i%2 == 0, "churn")
				}
				if err == nil {
					changes.Add(1)
				}
			}
		}()
		deadline := time.Now().Add(20 * time.Second)
		for changes.Load() < 5 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		// The random delay is the point: the kill lands anywhere.
		time.Sleep(time.Duration(rand.IntN(50)) * time.Millisecond)
		p.cmd.Process.Kill()
		err := <-p.exited
		p.exited <- err
		cancel()
		wg.Wait()
		c.Close()
		if changes.Load() < 5 {
			t.Fatalf("round %d: only %d changes before the kill", round, changes.Load())
		}

		raw, err := os.ReadFile(p.state)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		var st proxy.State
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatalf("round %d: state file does not parse after kill -9: %v\n%s", round, err, raw)
		}
		if len(st.Routes) != 1 || st.Routes[0].Route.Name != "shop/test" || len(st.Routes[0].Active) != 1 {
			t.Fatalf("round %d: state: got %+v, want shop/test with one active target", round, st)
		}
		// Maintenance may be on at the kill; the next round needs traffic.
		st.Routes[0].Maintenance = false
		fixed, _ := json.Marshal(st)
		os.WriteFile(p.state, fixed, 0o600)
	}
}

// TestProxyTakeoverDuringDeploy sends SIGHUP while a deploy waits for its
// targets' health: the old process lets the deploy finish before it starts
// the new one, so the new process has the route as the deploy left it.
func TestProxyTakeoverDuringDeploy(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gantry binary")
	}
	p := startBinProxy(t, gantryBinary(t), t.TempDir())
	addr, _ := waitServing(t, p.log, 0)["http"].(string)
	c := admin.NewClient(p.admin, "")
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	route := gantry.Route{Name: "shop/test", Hosts: []string{"test.shop.localhost"},
		Health: gantry.HealthCheck{Path: "/up", Interval: 20 * time.Millisecond}, DeployTimeout: 30 * time.Second, DrainTimeout: time.Second}
	if _, err := c.Deploy(ctx, route, []string{MustBackend(t, "v1")}); err != nil {
		t.Fatal(err)
	}

	var ready, probed atomic.Bool
	v2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/up" {
			probed.Store(true)
			if !ready.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
		}
		fmt.Fprint(w, "v2")
	}))
	defer v2.Close()
	deployErr := make(chan error, 1)
	go func() {
		_, err := c.Deploy(ctx, route, []string{strings.TrimPrefix(v2.URL, "http://")})
		deployErr <- err
	}()
	waitFor(t, "the deploy's health round", probed.Load)
	p.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, "the takeover to start", func() bool { return strings.Contains(p.log(), "takeover: starting") })
	ready.Store(true)

	if err := <-deployErr; err != nil {
		t.Fatalf("deploy across the takeover: %v", err)
	}
	select {
	case err := <-p.exited:
		p.exited <- err
	case <-time.After(30 * time.Second):
		t.Fatalf("old process still running; log:\n%s", p.log())
	}
	waitServing(t, p.log, p.cmd.Process.Pid)
	if code, body, err := hostGet(http.DefaultClient, addr, "test.shop.localhost", "/"); err != nil || code != 200 || body != "v2" {
		t.Errorf("after the takeover: got %d %q %v, want 200 v2 (the deploy's target)", code, body, err)
	}
}

func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestProxyUpgradeToBrokenBinary replaces the binary with one that cannot
// start and sends SIGHUP: the takeover fails and the old process keeps
// serving traffic and the admin API. Putting a good binary back and
// sending SIGHUP again upgrades.
func TestProxyUpgradeToBrokenBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the gantry binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "gantry")
	good, err := os.ReadFile(gantryBinary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, good, 0o755); err != nil {
		t.Fatal(err)
	}
	p := startBinProxy(t, bin, dir, "--takeover-timeout", "5s")
	addr, _ := waitServing(t, p.log, 0)["http"].(string)
	c := admin.NewClient(p.admin, "")
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := c.Deploy(ctx, gantry.Route{Name: "shop/test", Hosts: []string{"test.shop.localhost"}}, []string{MustBackend(t, "v1")}); err != nil {
		t.Fatal(err)
	}

	// Upgrades replace the file by renaming over it, as install(1) does.
	broken := filepath.Join(dir, "gantry.broken")
	os.WriteFile(broken, []byte("#!/bin/sh\necho broken >&2\nexit 3\n"), 0o755)
	if err := os.Rename(broken, bin); err != nil {
		t.Fatal(err)
	}
	reload := func() (string, error) {
		// The installed binary may be the broken one: reload with the good.
		out, err := exec.Command(gantryBinary(t), "proxy", "reload", "--pid-file", p.pidFile, "--timeout", "20s").CombinedOutput()
		return string(out), err
	}
	if out, err := reload(); err == nil || !strings.Contains(out, "failed to start") {
		t.Errorf("reload onto a broken binary: got %v %q, want a failure saying the new process failed to start", err, out)
	}
	waitFor(t, "the takeover to fail", func() bool { return strings.Contains(p.log(), "takeover failed") })
	if code, body, err := hostGet(http.DefaultClient, addr, "test.shop.localhost", "/"); err != nil || code != 200 || body != "v1" {
		t.Errorf("after a failed takeover: got %d %q %v, want 200 v1", code, body, err)
	}
	if routes, err := c.Status(ctx); err != nil || len(routes) != 1 {
		t.Errorf("admin after a failed takeover: got %d routes, %v; want 1", len(routes), err)
	}
	select {
	case err := <-p.exited:
		t.Fatalf("old process exited after a failed takeover: %v", err)
	default:
	}

	fixed := filepath.Join(dir, "gantry.fixed")
	os.WriteFile(fixed, good, 0o755)
	if err := os.Rename(fixed, bin); err != nil {
		t.Fatal(err)
	}
	if out, err := reload(); err != nil || !strings.Contains(out, "proxy reloaded") {
		t.Fatalf("reload onto the good binary: %v %q; log:\n%s", err, out, p.log())
	}
	select {
	case err := <-p.exited:
		p.exited <- err
	case <-time.After(30 * time.Second):
		t.Fatalf("old process still running after the reload; log:\n%s", p.log())
	}
	waitServing(t, p.log, p.cmd.Process.Pid)
	if code, body, err := hostGet(http.DefaultClient, addr, "test.shop.localhost", "/"); err != nil || code != 200 || body != "v1" {
		t.Errorf("after the upgrade: got %d %q %v, want 200 v1", code, body, err)
	}
}
