package sqlite

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// crashEnv names the database that TestCrashHelper writes to before it
// kills its own process.
const crashEnv = "GANTRY_SQLITE_CRASH_DB"

// TestCrashAfterAppendStep checks invariant 4's half that the store owns: a
// step that AppendStep has returned is there after the process dies without
// closing anything. A child process journals steps, reports each one, and is
// killed with SIGKILL; the parent then opens the file.
func TestCrashAfterAppendStep(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gantry.db")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashHelper$")
	cmd.Env = append(os.Environ(), crashEnv+"="+path)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var id int64
	var seqs []int
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "deployment "); ok {
			id, _ = strconv.ParseInt(v, 10, 64)
		} else if v, ok := strings.CutPrefix(sc.Text(), "step "); ok {
			n, _ := strconv.Atoi(v)
			seqs = append(seqs, n)
		}
	}
	err = cmd.Wait()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child: got %v, want it killed by SIGKILL", err)
	}
	if id == 0 || len(seqs) != 5 {
		t.Fatalf("child reported deployment %d and steps %v, want 5 steps", id, seqs)
	}

	db := MustOpen(t, path)
	d, err := db.FindDeployment(t.Context(), id)
	if err != nil {
		t.Fatalf("FindDeployment after the crash: %v", err)
	}
	if len(d.Steps) != len(seqs) {
		t.Fatalf("steps after the crash: got %d, want the %d that AppendStep returned", len(d.Steps), len(seqs))
	}
	for i, s := range d.Steps {
		if s.Seq != seqs[i] || s.Name != fmt.Sprintf("step %d", i+1) {
			t.Errorf("step %d after the crash: got %d %q, want %d", i, s.Seq, s.Name, seqs[i])
		}
	}
}

// TestCrashHelper is the child of TestCrashAfterAppendStep; it does nothing
// in a normal run.
func TestCrashHelper(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("helper process for TestCrashAfterAppendStep")
	}
	ctx := context.Background()
	db, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop"}); err != nil {
		t.Fatal(err)
	}
	d := &gantry.Deployment{App: "shop", Env: "test", Kind: gantry.KindDeploy, State: gantry.DeploymentRunning}
	if err := db.CreateDeployment(ctx, d); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("deployment %d\n", d.ID)
	for i := range 5 {
		s := &gantry.Step{Name: fmt.Sprintf("step %d", i+1), State: gantry.StepStarted}
		if err := db.AppendStep(ctx, d.ID, s); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("step %d\n", s.Seq)
	}
	os.Stdout.Sync()
	// No Close: the WAL is not checkpointed, the process just ends.
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
