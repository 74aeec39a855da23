package main

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/examples"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// TestFailoverAcrossHosts is TestLeaderFailoverOnPostgres and
// TestRouterPartitionKeepsServing on hosts of their own: each server,
// router, PostgreSQL, the Docker Engine and the clients run in network
// namespaces the test creates (netlab_test.go), each with its own
// address. The app runs on the Docker host, which both servers manage
// over TCP, on that host's address, so that the routers reach its
// instances and either server can take them over.
//
// Two servers, two following routers, continuous load on both from a
// client host: the leader is killed (SIGKILL) at each journal event of a
// deploy, the other server recovers the deployment (no step twice), and
// a leader frozen at the switch is deposed and, revived, cannot write;
// then router r2 is cut from both servers by its own firewall: it keeps
// serving, the deploy's switch fails naming it, and after the partition
// heals both follow again. No request fails on either router.
func TestFailoverAcrossHosts(t *testing.T) {
	needTools(t)
	lab := newNetLab(t)
	lab.host("db", 40)
	dock := lab.host("dock", 30)
	s1, s2 := lab.host("s1", 11), lab.host("s2", 12)
	r1, r2 := lab.host("r1", 21)+":8080", lab.host("r2", 22)+":8080"
	lab.host("cl", 50)
	hostOf := map[string]string{s1: "s1", s2: "s2"}

	store, _ := startPostgresOn(t, lab, "db", "netns")
	startDockerOn(t, lab, "dock")
	bin := gantryBinary(t)
	repo := dockerHelloRepo(t, dock+":5000/hello")

	dir := t.TempDir()
	c := &cluster{t: t, store: store, crashFile: filepath.Join(dir, "crash-at"),
		proxyURL: "http://" + r1, dir: dir,
		env: []string{"DOCKER_HOST=tcp://" + dock + ":2375"},
		command: func(addr string) *exec.Cmd {
			host, _, _ := strings.Cut(addr, ":")
			return lab.command(hostOf[host], os.Args[0], "-test.run=^$")
		},
		routerOn: func(i int, bin string) string { return lab.wrapper([]string{"r1", "r2"}[i], bin) },
	}
	c.crashAt("")
	a := c.start(s1 + ":7878")
	c.leading(a, 20*time.Second)
	b := c.start(s2 + ":7878")
	startRouters(t, c, a, b, []string{r1, r2}, [][]string{{a.TCP, b.TCP}, {a.TCP, b.TCP}})

	token := testerToken(t, a.API)
	cli := func(server string, args ...string) (string, string, int) {
		cmd := lab.command("cl", bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GANTRY_SERVER="+server, "GANTRY_TOKEN="+token, "GANTRY_ACTOR=tester")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if _, ok := err.(*exec.ExitError); err != nil && !ok {
			t.Fatalf("gantry %s: %v", strings.Join(args, " "), err)
		}
		return out.String(), errb.String(), cmd.ProcessState.ExitCode()
	}
	client := lab.client("cl")
	get := func(router string) (string, error) {
		return getVersionWith(client, "http://"+router, "test.hello.localhost")
	}
	rig := &failoverRig{c: c, leader: a, follower: b, routers: []string{r1, r2}, repo: repo, cli: cli, get: get, dial: lab.Dial("cl"),
		restart: func(dead *childProc) *childProc { return c.start(strings.TrimPrefix(dead.TCP, "http://")) }}
	runFailover(t, rig)
	if t.Failed() {
		return
	}

	// The instances run on the Docker host, at its address.
	env, err := api.NewClient(rig.leader.API, "").Environment(context.Background(), "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	for _, inst := range env.ActiveSlot().Instances {
		if host, _, _ := strings.Cut(inst.Addr, ":"); host != dock {
			t.Errorf("instance %s-%d at %s, want on the Docker host %s", inst.Service, inst.Index, inst.Addr, dock)
		}
	}

	// Router r2 cut off from both servers: it keeps serving.
	loads := []*loadtest.Load{}
	for _, r := range rig.routers {
		loads = append(loads, loadtest.Start(loadtest.Options{URL: "http://" + r + "/", Host: "test.hello.localhost", Workers: 2, MaxDuration: 5 * time.Minute, Dial: lab.Dial("cl")}))
	}
	serving := sameOnRouters(t, get, rig.routers)
	next := map[string]string{"1.0.0": "1.1.0", "1.1.0": "1.0.0"}[serving]
	lab.partition("r2", "s1", "s2")
	server := rig.follower.TCP // forwarded to the leader
	_, errs, code := cli(server, "deploy", "test", "--release", next)
	if code == 0 || !strings.Contains(errs, "r2") || !strings.Contains(errs, "behind") {
		t.Fatalf("deploy with r2 partitioned: exit %d, %q; want a failure naming r2 as behind", code, errs)
	}
	t.Logf("deploy with r2 partitioned: exit %d: %s", code, strings.TrimSpace(errs))
	if got := sameOnRouters(t, get, rig.routers); got != serving {
		t.Errorf("after the failed switch the routers serve %s, want %s", got, serving)
	}
	before := loads[1].OK.Load()
	waitUntil(t, 10*time.Second, func() bool { return loads[1].OK.Load() > before+50 })
	if out, _, _ := cli(server, "routers"); !strings.Contains(out, "r2") || !strings.Contains(out, "behind") {
		t.Errorf("gantry routers while r2 is partitioned:\n%s\nwant r2 shown behind", out)
	}

	lab.heal("r2", "s1", "s2")
	waitRoutersCaughtUp(t, rig.leader.API, 40*time.Second)
	rig.mustCLI(t, server, "deploy", "test", "--release", next)
	if got := sameOnRouters(t, get, rig.routers); got != next {
		t.Errorf("after the partition healed the routers serve %s, want %s", got, next)
	}
	for i, l := range loads {
		l.Stop()
		if n := l.Failed.Load(); n != 0 {
			t.Errorf("router r%d: %d of %d requests failed:\n%s", i+1, n, n+l.OK.Load(), strings.Join(l.Failures(), "\n"))
		}
	}
}

// startDockerOn runs a throwaway Docker Engine on host, listening on the
// host's address (tcp, port 2375, no TLS: the lab is closed) as well as on
// a unix socket, and a registry beside it on port 5000.
func startDockerOn(t *testing.T, l *netLab, host string) {
	t.Helper()
	if err := dockertest.Usable(); err != nil {
		if os.Getenv(dockertest.IntegrationEnv) == "1" {
			t.Fatalf("docker: %v (and %s=1)", err, dockertest.IntegrationEnv)
		}
		t.Skipf("docker: %v", err)
	}
	// Short: the engine's unix sockets live under it (108-byte limit).
	dir, err := os.MkdirTemp("", "gl-dk-")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.addrs[host]
	reg, err := dockertest.StartRegistryWith(filepath.Join(dir, "registry"), dockertest.Options{Wrap: l.wrap(host), Addr: addr + ":5000", Client: l.client(host)})
	if err != nil {
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	eng, err := dockertest.StartEngineWith(filepath.Join(dir, "engine"), dockertest.Options{Wrap: l.wrap(host),
		Args: []string{"-H", "tcp://" + addr + ":2375", "--insecure-registry", addr + ":5000"}})
	if err != nil {
		reg.Close()
		os.RemoveAll(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := eng.Close(); err != nil {
			t.Errorf("stop dockerd: %v", err)
		}
		reg.Close()
		dockertest.RemoveAll(dir)
	})
}

// dockerHelloRepo is the sample app as an image release: its program,
// built statically, goes into an image FROM scratch that the servers build
// on the Docker host and push to registry; 1.0.0 tagged v1.0.0, then
// 1.1.0 tagged v1.1.0.
func dockerHelloRepo(t *testing.T, registry string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hello")
	src, err := fs.Sub(examples.Hello, "hello")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(dir, src); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"go.mod":     "module hello\n\ngo 1.22\n",
		"Dockerfile": "FROM scratch\nCOPY bin/hello /hello\n",
		"gantry.yml": `app: hello
version:
  scheme: semver
services:
  web:
    docker: {dockerfile: Dockerfile}
    run: /hello
    http: true
    instances: 2
    health: {path: /up, interval: 200ms}
    stop: {signal: SIGTERM, timeout: 10s}
environments:
  test:
    hosts: [test.hello.localhost]
    runtime: {driver: docker, registry: ` + registry + `}
    strategy: bluegreen
    keep_warm: 10m
`,
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	build := exec.Command("go", "build", "-trimpath", "-o", "bin/hello", ".")
	build.Dir, build.Env = dir, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the sample app: %v\n%s", err, out)
	}
	git := func(args ...string) {
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	git("init", "-q", "-b", "main")
	git("add", "-A")
	git("commit", "-q", "-m", "hello 1.0.0")
	git("tag", "v1.0.0")
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("1.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("commit", "-q", "-am", "hello 1.1.0")
	git("tag", "v1.1.0")
	return dir
}
