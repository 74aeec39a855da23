package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/internal/loadtest"
	"github.com/gantry-dev/gantry/internal/smallfs"
)

// TestFullDiskAtSwitch runs the server with --data on a small filesystem
// of its own (a tmpfs) and fills it once the switch step is journaled,
// under continuous load (fact 6 of issue 12): the switch moves the traffic
// but its result cannot be written. No request may fail: the candidate
// that took the traffic must not be stopped as if the switch had failed
// (invariant 12). The deploy's error must say the disk is full; once space
// returns, without a restart, the lock is free, no deployment is left
// running, and the record says what the router serves.
func TestFullDiskAtSwitch(t *testing.T) {
	needTools(t)
	mnt := smallfs.Mount(t, 256<<20)
	data, filler := filepath.Join(mnt, "data"), filepath.Join(mnt, "filler")
	router := freeAddr(t)
	repo := helloRepo(t)
	setup := startChild(t, data, router, "")
	mustCLI(t, setup.API, "app", "add", "hello", "--repo", repo)
	mustCLI(t, setup.API, "deploy", "test", "--ref", "v1.0.0")
	mustCLI(t, setup.API, "release", "build", "--ref", "v1.1.0")
	setup.stop()
	// The same state, served by a server that fills the disk at its next
	// switch.
	srv := startChild(t, data, router, "", "GANTRY_TEST_FILL_AT=deploy:switch:started", "GANTRY_TEST_FILL="+filler)
	t.Cleanup(func() {
		if srv.cmd.ProcessState == nil {
			srv.stop()
		}
		os.Remove(filler)
		stopInstancesWith(t, &Server{DataDir: data, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Logger: newLogger(testWriter{t}, "text")})
	})

	load := loadtest.Start(loadtest.Options{URL: srv.Router + "/", Host: "test.hello.localhost", Workers: 4, MaxDuration: 5 * time.Minute, CountBodies: true})
	defer load.Stop()
	_, errs, code := runCLI(t, srv.API, "deploy", "test", "--release", "1.1.0")
	if code == 0 {
		t.Fatalf("a deploy whose switch could not be recorded exited 0")
	}
	if !strings.Contains(errs, "disk of the data directory is full") {
		t.Errorf("the deploy's error does not say the disk is full:\n%s", errs)
	}
	if _, err := os.Stat(filler); err != nil {
		t.Fatalf("the disk was never filled: %v\n%s", err, srv.stderr)
	}
	// The disk stays full a while longer under load.
	time.Sleep(time.Second)
	failedWhileFull := load.Failed.Load()
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	c := api.NewClient(srv.API, "tester")
	var env *api.EnvironmentStatus
	deadline := time.Now().Add(30 * time.Second)
	for {
		var err error
		env, err = c.Environment(context.Background(), "hello", "test")
		if err == nil && env.Lock == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("30s after space returned the lock is still held: %+v (%v)", env.Lock, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	got, err := getVersion(srv.Router, "test.hello.localhost")
	if err != nil {
		t.Fatal(err)
	}
	if a := env.ActiveSlot(); a == nil || a.Version != got || len(a.Instances) != 2 {
		t.Errorf("after space returned the record's active slot is %+v, the router serves %s", a, got)
	}
	ds, err := c.ListDeployments(context.Background(), "hello", "test", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].State == gantry.DeploymentRunning {
		t.Errorf("deployment #%d is still running after space returned", ds[0].ID)
	}
	// The environment takes the next deploy.
	mustCLI(t, srv.API, "deploy", "test", "--release", map[string]string{"1.0.0": "1.1.0", "1.1.0": "1.0.0"}[got])
	load.Stop()
	t.Logf("serving %s after the full disk; deployment #%d %s: %s; load: %d ok, %d failed (%d while the disk was full) %v; answers by version %v",
		got, ds[0].ID, ds[0].State, ds[0].Error, load.OK.Load(), load.Failed.Load(), failedWhileFull, load.Failures(), byVersion(load.Bodies()))
	if load.Failed.Load() > 0 {
		t.Errorf("%d requests failed: %v", load.Failed.Load(), load.Failures())
	}
}

// byVersion counts a load's answers by the version the hello app printed.
func byVersion(bodies map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for b, n := range bodies {
		v := "?"
		if _, rest, ok := strings.Cut(b, `<dd id="version">`); ok {
			v, _, _ = strings.Cut(rest, "<")
		}
		out[v] += n
	}
	return out
}
