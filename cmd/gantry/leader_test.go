package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/deploy"
	"github.com/gantry-dev/gantry/internal/loadtest"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// crashByFile makes a child server stop at the journal event named in the
// file at path (KIND:STEP:STATE, read at every step, so that a test moves
// the point while its servers run): SIGKILL, or SIGSTOP when the name is
// prefixed "stop:" (the test revives it with SIGCONT, deposed).
func crashByFile(s *Server, path string) {
	s.Orchestrator.OnStep = func(d *gantry.Deployment, st gantry.Step) {
		b, _ := os.ReadFile(path)
		at := strings.TrimSpace(string(b))
		ev := d.Kind + ":" + st.Name + ":" + st.State
		switch {
		case at == "":
		case at == ev:
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		case at == "stop:"+ev:
			os.WriteFile(path, nil, 0o600) // once
			syscall.Kill(os.Getpid(), syscall.SIGSTOP)
		}
	}
}

// cluster is a control plane of child servers on one PostgreSQL store,
// with routers that follow it.
type cluster struct {
	t         *testing.T
	store     string
	crashFile string
	proxyURL  string
	firstSock string // the tests' token is made once, on the first server
	dir       string
	n         int
	// On other hosts (netns_test.go): env is more of the servers'
	// environment; command runs a server that listens on addr, and
	// routerOn the ith router's program bin (nil: here).
	env      []string
	command  func(addr string) *exec.Cmd
	routerOn func(i int, bin string) string
}

// start runs one more server of the cluster, its API on addr: a server
// that replaces a dead one comes back at its address, which the routers
// follow.
func (c *cluster) start(addr string) *childProc {
	c.t.Helper()
	c.n++
	data := filepath.Join(c.dir, fmt.Sprintf("server%d", c.n))
	if err := os.MkdirAll(data, 0o755); err != nil {
		c.t.Fatal(err)
	}
	// Artifacts in the store: what one server built, the others run.
	env := append([]string{"GANTRY_TEST_LISTEN=" + addr, "GANTRY_TEST_STORE=" + c.store, "GANTRY_TEST_FOLLOW_ROUTERS=1", "GANTRY_TEST_ARTIFACTS=store",
		"GANTRY_TEST_PROXY_URL=" + c.proxyURL, "GANTRY_TEST_CRASH_FILE=" + c.crashFile}, c.env...)
	var p *childProc
	if c.command != nil {
		p = startChildCmd(c.t, c.command(addr), data, "", "", env...)
	} else {
		p = startChild(c.t, data, "", "", env...)
	}
	if c.firstSock == "" {
		c.firstSock = p.API
	}
	registerSocket(c.t, p.TCP, c.firstSock)
	return p
}

func (c *cluster) crashAt(at string) {
	c.t.Helper()
	if err := os.WriteFile(c.crashFile, []byte(at), 0o600); err != nil {
		c.t.Fatal(err)
	}
}

// leading waits until p says it holds the lease.
func (c *cluster) leading(p *childProc, within time.Duration) {
	c.t.Helper()
	waitUntil(c.t, within, func() bool {
		st, err := api.NewClient(p.API, "").Leader(context.Background())
		return err == nil && st.Leading
	})
}

// twoServers starts two servers of a cluster on one new PostgreSQL
// database, db, the first (a) leading, whose proxy is the router at
// proxy.
func twoServers(t *testing.T, db, proxy string) (c *cluster, a, b *childProc) {
	t.Helper()
	gantryBinary(t) // built before the servers run, for startRouters
	pg := pgtest.Start(t)
	dir := t.TempDir()
	c = &cluster{t: t, store: pgStore(t, pg, db, db),
		crashFile: filepath.Join(dir, "crash-at"), proxyURL: "http://" + proxy, dir: dir}
	c.crashAt("")
	a = c.start(freeAddr(t))
	c.leading(a, 10*time.Second)
	b = c.start(freeAddr(t))
	t.Cleanup(func() { stopClusterInstances(t, c) })
	return c, a, b
}

// startRouters starts a router of the built binary at each of addrs,
// router i following the servers at follow[i] with a token of a's, and
// waits until b sees them all.
func startRouters(t *testing.T, c *cluster, a, b *childProc, addrs []string, follow [][]string) {
	t.Helper()
	bin := gantryBinary(t)
	tokenFile := filepath.Join(c.dir, "router.token")
	if err := os.WriteFile(tokenFile, []byte(testerToken(t, a.API)), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, addr := range addrs {
		rdir := filepath.Join(c.dir, fmt.Sprintf("router%d", i+1))
		os.MkdirAll(rdir, 0o755)
		on := bin
		if c.routerOn != nil {
			on = c.routerOn(i, bin)
		}
		startBinProxy(t, on, rdir, "--listen", addr, "--follow", follow[i][0], "--follow", follow[i][1],
			"--follow-token-file", tokenFile, "--follow-name", fmt.Sprintf("r%d", i+1))
	}
	waitUntil(t, 20*time.Second, func() bool {
		st, err := api.NewClient(b.API, "").Routers(context.Background())
		return err == nil && len(st.Routers) == 2
	})
}

// TestLeaderFailoverOnPostgres: two servers on one PostgreSQL store, two
// routers following them under continuous load. A deploy sent to the
// server that does not lead is forwarded to the leader; the leader is
// killed (SIGKILL) at each journal event of the deploy in turn (each step
// started, and done; a step that only records is written once, done): the
// other server takes the lease within seconds and
// recovers the deployment from the journal (no step of it runs again),
// both routers serve one and the same consistent release throughout, and
// no request fails. Then a leader
// frozen (SIGSTOP) at the switch is deposed and, revived, cannot write:
// the store refuses its journal and route table writes.
func TestLeaderFailoverOnPostgres(t *testing.T) {
	needTools(t)
	r1, r2 := freeAddr(t), freeAddr(t)
	c, a, b := twoServers(t, "lead", r1)

	startRouters(t, c, a, b, []string{r1, r2}, [][]string{{a.TCP, b.TCP}, {a.TCP, b.TCP}})
	runFailover(t, &failoverRig{
		c: c, leader: a, follower: b, routers: []string{r1, r2}, repo: helloRepo(t),
		cli: func(server string, args ...string) (string, string, int) { return runCLI(t, server, args...) },
		get: func(router string) (string, error) { return getVersion("http://"+router, "test.hello.localhost") },
		restart: func(dead *childProc) *childProc {
			return c.start(strings.TrimPrefix(dead.TCP, "http://"))
		},
	})
}

// failoverRig is what runFailover runs on: a cluster whose first server
// leads, its routers (host:port), and how the test reaches them.
type failoverRig struct {
	c                *cluster
	leader, follower *childProc
	routers          []string
	repo             string // the hello app's repository
	// cli runs the CLI against a server's TCP API as the tester; get
	// returns the version a router serves for test.hello.localhost; dial
	// opens the load's connections (nil: from the test's network).
	cli     func(server string, args ...string) (stdout, stderr string, code int)
	get     func(router string) (string, error)
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)
	restart func(dead *childProc) *childProc // a new server in dead's place
	// failovers are the times from a leader's death to the deployment
	// recovered, one per crash point.
	failovers []time.Duration
}

func (r *failoverRig) mustCLI(t *testing.T, server string, args ...string) {
	t.Helper()
	if out, errs, code := r.cli(server, args...); code != 0 {
		t.Fatalf("gantry %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errs)
	}
}

// runFailover: deploys go through the server that does not lead (it
// forwards them), under continuous load on every router; the leader dies
// at each journal event of a deploy in turn, then one is frozen at the
// switch and revived deposed. See TestLeaderFailoverOnPostgres.
func runFailover(t *testing.T, r *failoverRig) {
	follower, leader := r.follower, r.leader
	r.mustCLI(t, follower.TCP, "app", "add", "hello", "--repo", r.repo)
	r.mustCLI(t, follower.TCP, "deploy", "test", "--ref", "v1.0.0")
	r.mustCLI(t, follower.TCP, "release", "build", "--ref", "v1.1.0")
	r.mustCLI(t, follower.TCP, "deploy", "test", "--release", "1.1.0")
	r.mustCLI(t, follower.TCP, "deploy", "test", "--release", "1.0.0")
	if got := sameOnRouters(t, r.get, r.routers); got != "1.0.0" {
		t.Fatalf("the routers serve %s, want 1.0.0", got)
	}
	cl := api.NewClient(follower.API, "")
	ds, err := cl.ListDeployments(context.Background(), "hello", "test", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	full, err := cl.FindDeployment(context.Background(), "hello", ds[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	var points []string
	for _, s := range full.Steps {
		if !deploy.RecordOnly(s.Name) {
			points = append(points, "deploy:"+s.Name+":started")
		}
		points = append(points, "deploy:"+s.Name+":done")
	}

	loads := []*loadtest.Load{}
	for _, rt := range r.routers {
		loads = append(loads, loadtest.Start(loadtest.Options{URL: "http://" + rt + "/", Host: "test.hello.localhost", Workers: 2, MaxDuration: 10 * time.Minute, Dial: r.dial}))
	}
	if only := os.Getenv("GANTRY_TEST_ONLY_AT"); only != "" {
		points = []string{only}
	}
	deploy := func(args ...string) (string, string, int) { return r.cli(follower.TCP, args...) }
	for _, at := range points {
		r.c.crashAt(at)
		prev := latestDeployment(t, follower)
		killed := deployUntilDeath(t, deploy, leader, at)
		r.c.crashAt("")
		d := waitRecovered(t, follower, prev, 20*time.Second)
		r.failovers = append(r.failovers, time.Since(killed))
		checkJournal(t, d, at)
		if !strings.Contains(d.Error, "took over") {
			t.Errorf("recovered deployment's error %q does not say another server took over", d.Error)
		}
		got := sameOnRouters(t, r.get, r.routers)
		env, err := api.NewClient(follower.API, "").Environment(context.Background(), "hello", "test")
		if err != nil {
			t.Fatal(err)
		}
		if a := env.ActiveSlot(); a == nil || a.Version != got {
			t.Fatalf("after the leader died at %s the routers serve %s, the active slot is %s on %s (%s)", at, got, a.Version, a.Name, d.Error)
		}
		t.Logf("leader killed at %s: the other server took over and recovered in %s; serving %s (%s)", at, r.failovers[len(r.failovers)-1].Round(time.Millisecond), got, d.Error)
		if got == "1.1.0" {
			r.mustCLI(t, follower.TCP, "deploy", "test", "--release", "1.0.0")
		}
		leader, follower = follower, r.restart(leader)
		deploy = func(args ...string) (string, string, int) { return r.cli(follower.TCP, args...) }
	}

	// A leader frozen at the switch is deposed; revived, it cannot write.
	// The deploy is sent once the leader leads, and again if it was
	// refused because the lease looked lapsed for a moment (as
	// deployUntilDeath does): only a deploy that reached the leader freezes
	// it.
	r.c.leading(leader, 15*time.Second)
	r.c.crashAt("stop:deploy:switch:started")
	prev := latestDeployment(t, follower)
	done := make(chan int, 1)
	go func() {
		for try := 0; ; try++ {
			_, errs, code := deploy("deploy", "test", "--release", "1.1.0")
			if code != 0 && try < 5 && (strings.Contains(errs, "does not run deployments") || strings.Contains(errs, "no server holds the lease")) {
				time.Sleep(time.Second)
				continue
			}
			done <- code
			return
		}
	}()
	d := waitRecovered(t, follower, prev, 30*time.Second)
	before := len(d.Steps)
	leader.cmd.Process.Signal(syscall.SIGCONT)
	select {
	case code := <-done:
		if code == 0 {
			t.Errorf("the deposed leader's deploy succeeded")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the revived leader's deploy did not end")
	}
	after, err := api.NewClient(follower.API, "").FindDeployment(context.Background(), "hello", d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Steps) != before || after.State != gantry.DeploymentRecovered {
		t.Errorf("the deposed leader wrote: %d steps (state %s) after it was revived, %d (recovered) before", len(after.Steps), after.State, before)
	}
	// The revived leader was refused: by the fence, or, when it was frozen
	// inside a transaction, by PostgreSQL ending that session
	// (idle_in_transaction_session_timeout, SQLSTATE 25P03) first.
	refused := func() bool {
		log := leader.stderr.String()
		return strings.Contains(log, "fenced") || strings.Contains(log, "25P03") || strings.Contains(log, "idle-in-transaction")
	}
	for deadline := time.Now().Add(10 * time.Second); !refused(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			log := leader.stderr.String()
			t.Fatalf("the revived leader's log says nothing of its refusal; its end:\n%s", log[max(0, len(log)-4000):])
		}
	}
	sameOnRouters(t, r.get, r.routers)
	r.c.leading(follower, 5*time.Second)
	r.leader, r.follower = follower, leader

	for i, l := range loads {
		l.Stop()
		if n := l.Failed.Load(); n != 0 {
			t.Errorf("router r%d: %d of %d requests failed:\n%s", i+1, n, n+l.OK.Load(), strings.Join(l.Failures(), "\n"))
		}
	}
	t.Logf("failover from the leader's death to the deployment recovered: %v", r.failovers)
}

// deployUntilDeath deploys 1.1.0 (through the follower) until leader dies at
// the crash point, and returns when it died. A deploy refused because the
// leader's lease looked lapsed for a moment (a renewal slower than the
// TTL on a loaded machine: "retry in a few seconds") is sent again.
func deployUntilDeath(t *testing.T, deploy func(args ...string) (string, string, int), leader *childProc, at string) time.Time {
	t.Helper()
	exited := make(chan struct{})
	go func() { leader.cmd.Wait(); close(exited) }()
	for try := 0; try < 5; try++ {
		_, errs, code := deploy("deploy", "test", "--release", "1.1.0")
		select {
		case <-exited:
			if code == 0 {
				t.Fatalf("the deploy survived the leader's death at %s", at)
			}
			return time.Now()
		case <-time.After(10 * time.Second):
		}
		if code == 0 || !strings.Contains(errs, "does not run deployments") && !strings.Contains(errs, "no server holds the lease") {
			t.Fatalf("deploy meant to crash the leader at %s: exit %d without its death:\n%s", at, code, errs)
		}
		t.Logf("deploy refused for a moment (%s); again", strings.TrimSpace(errs))
	}
	t.Fatalf("the leader never died at %s", at)
	return time.Time{}
}

// latestDeployment returns the ID of p's latest deployment of test.
func latestDeployment(t *testing.T, p *childProc) int64 {
	t.Helper()
	ds, err := api.NewClient(p.API, "").ListDeployments(context.Background(), "hello", "test", 1, 0)
	if err != nil || len(ds) == 0 {
		t.Fatalf("latest deployment: %v", err)
	}
	return ds[0].ID
}

// waitRecovered waits until p's latest deployment, newer than after, is no
// longer running and returns it with its journal.
func waitRecovered(t *testing.T, p *childProc, after int64, within time.Duration) *gantry.Deployment {
	t.Helper()
	cl := api.NewClient(p.API, "")
	var d *gantry.Deployment
	waitUntil(t, within, func() bool {
		ds, err := cl.ListDeployments(context.Background(), "hello", "test", 1, 0)
		if err != nil || len(ds) == 0 || ds[0].ID <= after || ds[0].State == gantry.DeploymentRunning {
			return false
		}
		d, err = cl.FindDeployment(context.Background(), "hello", ds[0].ID)
		return err == nil
	})
	if d.State != gantry.DeploymentRecovered {
		t.Fatalf("deployment #%d: state %s (%s), want recovered", d.ID, d.State, d.Error)
	}
	return d
}

// checkJournal: the interrupted step is the journal's last, written once:
// the server that took over ran no step of the deployment again.
func checkJournal(t *testing.T, d *gantry.Deployment, at string) {
	t.Helper()
	parts := strings.Split(at, ":")
	name, state := parts[1], parts[2]
	last := d.Steps[len(d.Steps)-1]
	if last.Name != name || last.State != state {
		t.Errorf("crash at %s: the journal ends with %s (%s), want %s", at, last.Name, last.State, name)
	}
	seen := map[string]int{}
	for _, s := range d.Steps {
		seen[s.Name]++
		if seen[s.Name] > 1 {
			t.Errorf("crash at %s: step %s is in the journal twice: %+v", at, s.Name, d.Steps)
		}
	}
}

// sameOnRouters returns the version every router serves, failing unless
// they all serve the same one (once the last change has reached them).
func sameOnRouters(t *testing.T, get func(router string) (string, error), routers []string) string {
	t.Helper()
	var got []string
	var last error
	// Generous: across hosts on a loaded machine a router applies the
	// recovered state later; a router that never does still fails.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, last = got[:0], nil
		for _, r := range routers {
			v, err := get(r)
			if err != nil {
				last = err
				break
			}
			got = append(got, v)
		}
		if last == nil && got[0] == got[len(got)-1] {
			return got[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("the routers do not serve the same release within 30s: %v (last error: %v)", got, last)
		}
	}
}

// stopClusterInstances stops the app's instances once the servers are gone.
func stopClusterInstances(t *testing.T, c *cluster) {
	data := filepath.Join(c.dir, "cleanup")
	os.MkdirAll(data, 0o755)
	stopInstancesWith(t, &Server{DataDir: data, Listen: "127.0.0.1:0", StoreURL: c.store, ArtifactsAt: "store", FollowRouters: true, Logger: newLogger(testWriter{t}, "text")})
}
