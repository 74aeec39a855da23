package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// openServer runs a server in-process on free ports and stops every
// instance it started when the test ends.
func openServer(t *testing.T, dataDir string, configure ...func(*Server)) *Server {
	t.Helper()
	s := &Server{DataDir: dataDir, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Logger: newLogger(testWriter{t}, "text")}
	for _, c := range configure {
		c(s)
	}
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

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// commitChange rewrites a file of repo and commits it, returning the new commit's ref.
func commitChange(t *testing.T, repo, file, content, msg string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(repo, file), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("git", "commit", "-q", "-am", msg)
	cmd.Dir = repo
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@localhost", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@localhost")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("git commit: %v\n%s", err, out)
	}
}

// TestBinaryWorkflow runs W1 and W4 through the real binary: build once,
// deploy to test, promote the same artifact to prod, deploy a new version,
// roll prod back, and check what each environment serves at each step.
func TestBinaryWorkflow(t *testing.T) {
	needTools(t)
	bin := gantryBinary(t)
	repo := helloRepo(t)
	data := t.TempDir()
	api, router := freeAddr(t), freeAddr(t)
	server := exec.Command(bin, "server", "--data", data, "--listen", api, "--router", router, "--log-format", "json")
	var serverLog syncWriter
	var logBuf strings.Builder
	serverLog.w = &logBuf
	server.Stderr = &serverLog
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		server.Process.Signal(os.Interrupt)
		server.Wait()
		// Stop the app instances the server left running, as a later
		// server on the same state would.
		stopInstancesWith(t, &Server{DataDir: data, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Logger: newLogger(testWriter{t}, "text")})
		if t.Failed() {
			serverLog.mu.Lock()
			t.Logf("server log:\n%s", logBuf.String())
			serverLog.mu.Unlock()
		}
	})
	apiURL, routerURL := "http://"+api, "http://"+router
	waitHTTP(t, apiURL+"/v1/health")
	// Over TCP the API needs a token: alice's is made on the server's unix
	// socket, where the test (the server's own user) is admin.
	mk := exec.Command(bin, "token", "create", "alice", "--role", "admin", "--server", "unix://"+filepath.Join(data, socketName))
	mk.Env = os.Environ()
	secret, err := mk.Output()
	if err != nil {
		t.Fatalf("token create alice: %v", err)
	}

	cli := func(wantCode int, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "GANTRY_SERVER="+apiURL, "GANTRY_ACTOR=alice", "GANTRY_TOKEN="+strings.TrimSpace(string(secret)))
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("gantry %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, wantCode, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	cli(0, "manifest", "check", filepath.Join(repo, "gantry.yml"))
	cli(0, "app", "add", "hello", "--repo", repo)
	var rel gantry.Release
	mustJSON(t, cli(0, "release", "build", "--ref", "v1.0.0", "--json"), &rel)
	if rel.Version != "1.0.0" || len(rel.ServiceNames()) != 1 || rel.Artifacts[gantry.SourceArtifact].Digest == "" {
		t.Fatalf("release = %+v, want version 1.0.0 with one service and its commit's files", rel)
	}
	// Building the same commit again reuses the release.
	var again gantry.Release
	mustJSON(t, cli(0, "release", "build", "--ref", "v1.0.0", "--json"), &again)
	if again.ID != rel.ID {
		t.Errorf("second build of the same commit: release %s, want the existing %s", again.ID, rel.ID)
	}

	cli(0, "deploy", "test", "--release", rel.ID)
	wantVersion(t, routerURL, "test.hello.localhost", "1.0.0")
	cli(0, "promote", "test", "prod")
	wantVersion(t, routerURL, "hello.localhost", "1.0.0")

	// W1: after promotion test and prod run the same digests.
	var diff struct {
		Same      bool `json:"same_release"`
		Artifacts []struct {
			Same bool `json:"same"`
		} `json:"artifacts"`
	}
	mustJSON(t, cli(0, "diff", "test", "prod", "--json"), &diff)
	if !diff.Same || len(diff.Artifacts) != 1 || !diff.Artifacts[0].Same {
		t.Fatalf("diff test prod = %+v, want the same release and digests", diff)
	}

	// A promotion the policy forbids is refused with exit 4.
	if out := cli(4, "promote", "prod", "test"); !strings.Contains(out, "promote") {
		t.Errorf("refused promotion says %q", out)
	}

	cli(0, "deploy", "test", "--ref", "main")
	wantVersion(t, routerURL, "test.hello.localhost", "1.1.0")
	cli(0, "promote", "test", "prod")
	wantVersion(t, routerURL, "hello.localhost", "1.1.0")

	out := cli(0, "rollback", "prod")
	wantVersion(t, routerURL, "hello.localhost", "1.0.0")
	if !strings.Contains(out, "warm slot") {
		t.Errorf("rollback output does not report a flip to the warm slot:\n%s", out)
	}

	// A locked environment refuses a deploy with exit 3 and names the holder.
	cli(0, "lock", "prod", "--reason", "release freeze")
	out = cli(3, "promote", "test", "prod")
	if !strings.Contains(out, "alice") || !strings.Contains(out, "manual lock") {
		t.Errorf("locked deploy error = %q, want the holder and the operation", out)
	}
	cli(0, "unlock", "prod")

	var hist []gantry.Deployment
	mustJSON(t, cli(0, "history", "prod", "--json"), &hist)
	if len(hist) != 3 || hist[0].Kind != gantry.KindRollback || hist[0].State != gantry.DeploymentSucceeded {
		t.Fatalf("prod history = %+v, want rollback, promote, promote", hist)
	}
	journal := cli(0, "history", strconv.FormatInt(hist[1].ID, 10))
	for _, step := range []string{"verify-artifacts", "start", "health", "switch"} {
		if !strings.Contains(journal, step) {
			t.Errorf("journal of deployment %d lacks step %s:\n%s", hist[1].ID, step, journal)
		}
	}
	if out := cli(0, "logs", "test", "web", "-n", "5"); !strings.Contains(out, "listening") {
		t.Errorf("logs test web = %q, want the instances' output", out)
	}
	var envs []json.RawMessage
	mustJSON(t, cli(0, "status", "--json"), &envs)
	if len(envs) != 2 {
		t.Errorf("status lists %d environments, want 2", len(envs))
	}
	cli(2, "deploy", "test") // neither --release nor --ref
}

func mustJSON(t *testing.T, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("decode %T: %v\n%s", v, err, s)
	}
}

func waitHTTP(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer within 30s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func wantVersion(t *testing.T, routerURL, host, want string) {
	t.Helper()
	got, err := getVersion(routerURL, host)
	if err != nil {
		t.Fatalf("GET %s: %v", host, err)
	}
	if got != want {
		t.Fatalf("%s serves %s, want %s", host, got, want)
	}
}

// TestDeployCyclesUnderLoad: 50 cycles of deploy to test, promote to prod
// and rollback of prod, with a continuous load on prod: no request fails.
func TestDeployCyclesUnderLoad(t *testing.T) {
	needTools(t)
	cycles := 50
	if n, err := strconv.Atoi(os.Getenv("GANTRY_TEST_CYCLES")); err == nil {
		cycles = n
	}
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.0.0")
	mustCLI(t, s.APIURL, "release", "build", "--ref", "v1.1.0")
	mustCLI(t, s.APIURL, "promote", "test", "prod")

	load := loadtest.Start(loadtest.Options{URL: s.RouterURL + "/", Host: "hello.localhost", Workers: 4, MaxDuration: 15 * time.Minute})
	// Each cycle redeploys 1.1.0 to test, promotes it over 1.0.0 on prod,
	// and flips prod back to 1.0.0.
	for range cycles {
		mustCLI(t, s.APIURL, "deploy", "test", "--release", "1.1.0")
		mustCLI(t, s.APIURL, "promote", "test", "prod")
		mustCLI(t, s.APIURL, "rollback", "prod")
		if n := load.Failed.Load(); n > 0 {
			break
		}
	}
	load.Stop()
	if n := load.Failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests failed during the cycles; first failures:\n%s", n, n+load.OK.Load(), strings.Join(load.Failures(), "\n"))
	}
	if load.OK.Load() < int64(cycles) {
		t.Fatalf("only %d requests succeeded: the load did not run", load.OK.Load())
	}
	t.Logf("%d cycles, %d requests, 0 failed", cycles, load.OK.Load())
}

// TestConcurrentDeploysOneRuns: two deploys to one environment at once:
// exactly one runs, the other is refused with exit 3 naming the holder.
func TestConcurrentDeploysOneRuns(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	// A verify step that takes a second keeps the first deploy holding the lock.
	manifest, _ := os.ReadFile(filepath.Join(repo, "gantry.yml"))
	commitChange(t, repo, "gantry.yml", string(manifest)+"verify:\n  - command: sleep 1\n", "slow verify")
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "release", "build", "--ref", "main")

	type result struct {
		out, errs string
		code      int
	}
	results := make([]result, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, e, c := runCLI(t, s.APIURL, "deploy", "test", "--release", "1.1.0")
			results[i] = result{o, e, c}
		}()
	}
	wg.Wait()
	codes := fmt.Sprint(results[0].code, results[1].code)
	if codes != "0 3" && codes != "3 0" {
		t.Fatalf("exit codes %s, want one 0 and one 3\n%+v", codes, results)
	}
	for _, r := range results {
		if r.code == 3 && !(strings.Contains(r.errs, "tester") && strings.Contains(r.errs, "deploy")) {
			t.Errorf("conflict message %q does not name the holder and the operation", r.errs)
		}
	}
	ds, err := s.Store.ListDeployments(context.Background(), gantry.DeploymentFilter{App: "hello", Env: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("%d deployments recorded, want exactly 1", len(ds))
	}
}

// TestFailedDeployKeepsOldRelease: a candidate that never becomes healthy
// is stopped, the old release keeps serving, and the deployment records why
// with the instance's last log lines.
func TestFailedDeployKeepsOldRelease(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.0.0")
	manifest, _ := os.ReadFile(filepath.Join(repo, "gantry.yml"))
	broken := strings.Replace(string(manifest), "run: bin/hello", `run: echo "cannot open database" >&2; exit 3`, 1)
	commitChange(t, repo, "gantry.yml", broken, "broken run command")
	commitChange(t, repo, "VERSION", "1.2.0\n", "1.2.0")

	out, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	if code != 1 {
		t.Fatalf("broken deploy exit %d, want 1\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(errs, "cannot open database") {
		t.Errorf("failure does not carry the instance's log lines:\n%s", errs)
	}
	wantVersion(t, s.RouterURL, "test.hello.localhost", "1.0.0")
	env, err := s.Store.FindEnvironment(context.Background(), "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	if cand := env.Slots[gantry.OtherSlot(env.Active)]; cand == nil || len(cand.Instances) != 0 {
		t.Errorf("candidate slot still has instances: %+v", cand)
	}
}

// TestRestartStrategyUnderLoad: patching in place (pause, stop old, start
// new, health, switch, resume) fails no request when the restart is shorter
// than the pause bound.
func TestRestartStrategyUnderLoad(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.0.0")
	mustCLI(t, s.APIURL, "release", "build", "--ref", "v1.1.0")
	load := loadtest.Start(loadtest.Options{URL: s.RouterURL + "/", Host: "test.hello.localhost", Workers: 4, MaxDuration: 5 * time.Minute})
	for _, v := range []string{"1.1.0", "1.0.0", "1.1.0"} {
		mustCLI(t, s.APIURL, "deploy", "test", "--release", v, "--strategy", "restart")
		wantVersion(t, s.RouterURL, "test.hello.localhost", v)
	}
	load.Stop()
	if n := load.Failed.Load(); n != 0 {
		t.Fatalf("%d requests failed during restarts:\n%s", n, strings.Join(load.Failures(), "\n"))
	}
	env, err := s.Store.FindEnvironment(context.Background(), "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	if other := env.Slots[gantry.OtherSlot(env.Active)]; other != nil && len(other.Instances) > 0 {
		t.Errorf("restart strategy left instances in the other slot: %+v", other)
	}
}
