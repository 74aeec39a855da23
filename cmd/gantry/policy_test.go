package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// editManifest applies replacements to the repository's gantry.yml and commits it.
func editManifest(t *testing.T, repo, msg string, edit func(string) string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo, "gantry.yml"))
	if err != nil {
		t.Fatal(err)
	}
	commitChange(t, repo, "gantry.yml", edit(string(b)), msg)
}

// TestFreezeAndBreakGlass: inside a freeze window a deploy is refused with
// exit 4 and the window's reason; with --break-glass it goes ahead, and the
// reason and the actor are in the journal.
func TestFreezeAndBreakGlass(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	editManifest(t, repo, "freeze test", func(m string) string {
		return strings.Replace(m, "    hosts: [test.hello.localhost]\n",
			"    hosts: [test.hello.localhost]\n    freeze:\n      - {from: \"2020-01-01T00:00:00Z\", to: \"2100-01-01T00:00:00Z\", reason: \"audit week\"}\n", 1)
	})
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	_, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	if code != 4 || !strings.Contains(errs, "frozen") || !strings.Contains(errs, "audit week") {
		t.Fatalf("deploy into a freeze: exit %d, %q; want 4 naming the window", code, errs)
	}
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main", "--break-glass", "incident 42: payment outage")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
	d := lastDeployment(t, s, "test")
	if !journalHas(d, "break-glass", "incident 42: payment outage") {
		t.Errorf("break-glass not recorded in the journal: %+v", d.Steps)
	}
	// A rollback is refused too, and goes through with break-glass.
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.0.0", "--break-glass", "second fix")
	if _, errs, code := runCLI(t, s.APIURL, "rollback", "test"); code != 4 {
		t.Errorf("rollback into a freeze: exit %d (%s), want 4", code, errs)
	}
	mustCLI(t, s.APIURL, "rollback", "test", "--break-glass", "revert second fix")
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.1.0")
}

// TestQueuedDeploysRunInOrder: deploys that find the environment locked and
// ask to --wait are all executed, one at a time, in the order they arrived.
func TestQueuedDeploysRunInOrder(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	// Each release verifies for half a second, so the deploys overlap.
	editManifest(t, repo, "slow verify", func(m string) string { return m + "verify:\n  - command: sleep 0.5\n" })
	versions := []string{"2.0.0", "2.1.0", "2.2.0"}
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	for _, v := range versions {
		commitChange(t, repo, "VERSION", v+"\n", v)
		mustCLI(t, s.APIURL, "release", "build", "--ref", "main")
	}
	codes, errs := make([]int, len(versions)), make([]string, len(versions))
	var wg sync.WaitGroup
	for i, v := range versions {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i], codes[i] = runCLI(t, s.APIURL, "deploy", "test", "--release", v, "--wait")
		}()
		// The next request arrives only once this one holds the lock or waits in the queue.
		waitUntil(t, 30*time.Second, func() bool {
			if i == 0 {
				_, err := s.Store.FindLock(context.Background(), "hello", "test")
				return err == nil
			}
			return s.Orchestrator.Queued("hello", "test") == i
		})
	}
	wg.Wait()
	for i := range versions {
		if codes[i] != 0 {
			t.Errorf("queued deploy of %s: exit %d: %s", versions[i], codes[i], errs[i])
		}
	}
	ds, err := s.Store.ListDeployments(context.Background(), gantry.DeploymentFilter{App: "hello", Env: "test", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for i := len(ds) - 1; i >= 0; i-- {
		order = append(order, ds[i].Version+":"+ds[i].State)
	}
	want := fmt.Sprint([]string{"2.0.0:succeeded", "2.1.0:succeeded", "2.2.0:succeeded"})
	if fmt.Sprint(order) != want {
		t.Errorf("deployments ran as %v, want %s", order, want)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "2.2.0")
	// Without --wait, a request that finds others queued or the lock held fails at once.
	mustCLI(t, s.APIURL, "lock", "test", "--reason", "maintenance")
	if _, _, code := runCLI(t, s.APIURL, "deploy", "test", "--release", "2.0.0"); code != 3 {
		t.Errorf("deploy to a locked environment without --wait: exit %d, want 3", code)
	}
}

func waitUntil(t testing.TB, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMigrationsViaClone: with migrations_via_clone on prod, a migration
// (a new minor version) promoted from a test that was not cloned from prod
// is refused, while a deployment (a new patch version) goes through.
func TestMigrationsViaClone(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	editManifest(t, repo, "migrations only via a clone of prod", func(m string) string {
		return strings.Replace(m, "    promote_from: test\n", "    promote_from: test\n    migrations_via_clone: true\n", 1)
	})
	commitChange(t, repo, "VERSION", "1.1.1\n", "1.1.1")
	git(t, repo, "tag", "v1.1.1")
	commitChange(t, repo, "VERSION", "1.2.0\n", "1.2.0")
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "HEAD~1") // 1.1.1
	mustCLI(t, s.APIURL, "promote", "test", "prod")
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "main") // 1.2.0: a migration
	_, errs, code := runCLI(t, s.APIURL, "promote", "test", "prod")
	if code != 4 || !strings.Contains(errs, "migration") || !strings.Contains(errs, "cloned from it") {
		t.Fatalf("migration promoted from a test not cloned from prod: exit %d, %q", code, errs)
	}
	wantVersion(t, s.RouterURL, "hello.localhost", "1.1.1")
	// Through a clone of prod it goes.
	mustCLI(t, s.APIURL, "env", "clone", "prod", "testnew")
	mustCLI(t, s.APIURL, "deploy", "testnew", "--release", "1.2.0")
	mustCLI(t, s.APIURL, "env", "rename", "testnew", "test", "--displace-to", "testold")
	mustCLI(t, s.APIURL, "promote", "test", "prod")
	wantVersion(t, s.RouterURL, "hello.localhost", "1.2.0")
}
