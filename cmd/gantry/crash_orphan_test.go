package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// TestCrashLeavesNoOrphanOrLock kills the server (SIGKILL) right after its
// driver spawned an instance and before the state saved it (fact 3 of
// issue 12), at the switch, and after a deployment's outcome was recorded
// but before its lock was released (fact 4); the router runs as its own
// `gantry proxy` under continuous load. After each restart it counts the
// instance processes of the environment that the state does not know
// (orphans, found by their environment in /proc) and the locks left: both
// must be 0, the old or the new release must serve, and no request may
// fail.
func TestCrashLeavesNoOrphanOrLock(t *testing.T) {
	needTools(t)
	bin := gantryBinary(t)
	dir, routerAddr := t.TempDir(), freeAddr(t)
	p := startBinProxy(t, bin, dir, "--listen", routerAddr)
	waitUntil(t, 30*time.Second, func() bool { _, err := os.Stat(p.admin); return err == nil })
	proxyEnv := []string{"GANTRY_TEST_PROXY_ADMIN=" + p.admin, "GANTRY_TEST_PROXY_URL=http://" + routerAddr}
	data := filepath.Join(dir, "state")
	repo := helloRepo(t)

	srv := startChild(t, data, "", "", proxyEnv...)
	mustCLI(t, srv.API, "app", "add", "hello", "--repo", repo)
	mustCLI(t, srv.API, "deploy", "test", "--ref", "v1.0.0")
	mustCLI(t, srv.API, "release", "build", "--ref", "v1.1.0")
	// The last step a deploy journals, to crash right after it.
	d := lastJournal(t, srv.API)
	if len(d.Steps) == 0 {
		t.Fatal("the first deploy has no journal")
	}
	lastStep := "deploy:" + d.Steps[len(d.Steps)-1].Name + ":done"
	srv.stop()
	t.Cleanup(func() {
		s := &Server{DataDir: data, Listen: "127.0.0.1:0", ProxyAdmin: p.admin, ProxyURL: "http://" + routerAddr, Logger: newLogger(testWriter{t}, "text")}
		if err := s.Open(context.Background()); err == nil {
			if err := s.Orchestrator.StopAll(context.Background()); err != nil {
				t.Errorf("cleanup: stop the app's instances: %v", err)
			}
			s.Close()
		}
		// What the state never knew, this test started: end it by pid.
		for pid := range instancePIDs(t, data, "hello", "test") {
			syscall.Kill(-pid, syscall.SIGKILL)
		}
	})

	routerURL := "http://" + routerAddr
	load := loadtest.Start(loadtest.Options{URL: routerURL + "/", Host: "test.hello.localhost", Workers: 2, MaxDuration: 10 * time.Minute})
	defer load.Stop()
	serving := "1.0.0"
	points := []string{"spawn:1", "spawn:2", "spawn:1", "spawn:2", "spawn:1", "spawn:2", "deploy:switch:done", lastStep, "finish", "finish", "finish"}
	orphans, locks := map[int]bool{}, 0
	for i, at := range points {
		next := map[string]string{"1.0.0": "1.1.0", "1.1.0": "1.0.0"}[serving]
		crashing := startChild(t, data, "", at, proxyEnv...)
		_, errs, code := runCLI(t, crashing.API, "deploy", "test", "--release", next)
		if code == 3 {
			locks++
			t.Errorf("round %d (%s): the deploy was refused by a lock left over: %s", i, at, errs)
			crashing.stop()
			srvFree := startChild(t, data, "", "", proxyEnv...)
			mustCLI(t, srvFree.API, "unlock", "test", "--force")
			srvFree.stop()
			continue
		}
		if code == 0 {
			t.Fatalf("round %d: the deploy survived a crash at %s", i, at)
		}
		crashing.cmd.Wait()

		restarted := startChild(t, data, "", "", proxyEnv...)
		rc := api.NewClient(restarted.API, "tester")
		env, err := rc.Environment(context.Background(), "hello", "test")
		if err != nil {
			t.Fatal(err)
		}
		known := map[int]bool{}
		for _, s := range env.Slots {
			for _, inst := range s.Instances {
				var h struct {
					PID int `json:"pid"`
				}
				json.Unmarshal([]byte(inst.Handle), &h)
				known[h.PID] = true
			}
		}
		for pid, cmd := range instancePIDs(t, data, "hello", "test") {
			if !known[pid] {
				orphans[pid] = true
				t.Errorf("round %d (%s): process %d (%s) runs an instance of hello/test unknown to the state", i, at, pid, cmd)
			}
		}
		if env.Lock != nil {
			locks++
			t.Errorf("round %d (%s): lock left after the restart: %+v", i, at, env.Lock)
		}
		got, err := getVersion(routerURL, "test.hello.localhost")
		if err != nil || (got != serving && got != next) {
			t.Fatalf("round %d (%s): test serves %q (%v), want %s or %s", i, at, got, err, serving, next)
		}
		if a := env.ActiveSlot(); a == nil || a.Version != got || len(a.Instances) != 2 {
			t.Fatalf("round %d (%s): active slot %+v does not match what serves (%s)", i, at, a, got)
		}
		serving = got
		restarted.stop()
	}
	load.Stop()
	t.Logf("%d crashes %v: %d orphan processes, %d leftover locks; load: %d ok, %d failed %v",
		len(points), points, len(orphans), locks, load.OK.Load(), load.Failed.Load(), load.Failures())
	if load.Failed.Load() > 0 {
		t.Errorf("%d requests failed across the crashes: %v", load.Failed.Load(), load.Failures())
	}
}

// instancePIDs returns the live processes (not zombies) whose environment
// says they are instances of app's environment env and that run in the
// data directory data (the process driver runs each instance in its
// release's files there: other tests on the machine run hello/test too),
// with their command lines.
func instancePIDs(t *testing.T, data, app, env string) map[int]string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"GANTRY_APP=" + app, "GANTRY_ENV=" + env}
	out := map[int]string{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		vars := map[string]bool{}
		for _, kv := range strings.Split(string(b), "\x00") {
			vars[kv] = true
		}
		if !vars[want[0]] || !vars[want[1]] {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || !strings.HasPrefix(cwd, data+string(os.PathSeparator)) {
			continue
		}
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if i := strings.LastIndexByte(string(st), ')'); err != nil || i < 0 || i+2 >= len(st) || st[i+2] == 'Z' {
			continue
		}
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		out[pid] = strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " ")
	}
	return out
}
