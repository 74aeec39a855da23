package postgres

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// TestCrashOfPostgres checks invariant 4's half that the store owns, on
// PostgreSQL: a step that AppendStep has returned survives the database
// server being killed (SIGKILL to the postmaster and every backend) right
// after. The test server runs with synchronous_commit=off, under which the
// last commits before such a kill are lost; the store must set it on for its
// own sessions (DB), and this fails if it stops doing so.
func TestCrashOfPostgres(t *testing.T) {
	mustServer(t)           // skips or fails the same way as the rest
	inst := pgtest.Start(t) // a server of its own: this test kills it
	ctx := t.Context()
	db := MustOpen(t, inst.URL, "crash")
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	d := &gantry.Deployment{App: "shop", Env: "prod", Kind: gantry.KindDeploy, State: gantry.DeploymentRunning}
	if err := db.CreateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	var last int
	for range 200 {
		s := &gantry.Step{Name: "step", State: gantry.StepStarted}
		if err := db.AppendStep(ctx, d.ID, s); err != nil {
			t.Fatal(err)
		}
		last = s.Seq
	}

	data := filepath.Join(inst.Dir, "data")
	b, err := os.ReadFile(filepath.Join(data, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	// pgtest starts the postmaster in a process group of its own, so this
	// kills exactly that server's processes.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill postgres: %v", err)
	}
	db.Close()
	again := reopenAfterCrash(t, inst, data, "crash")
	defer again.Close()
	got, err := again.FindDeployment(ctx, d.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Steps) != last {
		t.Errorf("after a crash of PostgreSQL: got %d steps, want the %d that AppendStep returned", len(got.Steps), last)
	}
}

// reopenAfterCrash starts PostgreSQL again on inst's data directory and
// port, with pgtest's settings, and opens schema once crash recovery is
// done. A new postmaster refuses to start while the killed one's last
// processes still hold its shared memory, so it is started again until it
// stays up. The server is stopped (by PID) when the test ends, before
// pgtest removes the directory.
func reopenAfterCrash(t *testing.T, inst *pgtest.Instance, data, schema string) *DB {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var log []byte
	for time.Now().Before(deadline) {
		exited, logPath := startPostgres(t, inst, data)
		for {
			db, err := Open(t.Context(), inst.URL, schema)
			if err == nil {
				return db
			}
			select {
			case <-exited:
			case <-time.After(100 * time.Millisecond):
				if time.Now().Before(deadline) {
					continue
				}
			}
			break
		}
		log, _ = os.ReadFile(logPath)
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("PostgreSQL did not come back after the crash; its log:\n%s", log)
	return nil
}

// startPostgres starts a postmaster and returns a channel closed when it
// exits, and its log's path.
func startPostgres(t *testing.T, inst *pgtest.Instance, data string) (<-chan struct{}, string) {
	t.Helper()
	cmd := exec.Command(inst.Bin("postgres"), "-D", data, "-p", strconv.Itoa(inst.Port), "-h", "127.0.0.1", "-k", inst.Dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "log_min_messages=warning")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if os.Geteuid() == 0 { // PostgreSQL refuses root; pgtest made its user
		u, err := user.Lookup(pgtest.RunAs)
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	logPath := filepath.Join(t.TempDir(), "postgres.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("restart postgres: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	return exited, logPath
}
