package process_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/driver/process"
	"github.com/gantry-dev/gantry/internal/drivertest"
	"github.com/gantry-dev/gantry/internal/tarball"
)

// The test program, built once and stored in one artifact store that every
// test's drivers read from.
var (
	appRoot   string // holds bin/testapp
	artifacts *artifact.Local
	appDigest string
	appName   = "proctest" // per test binary, to find leftovers
)

const helperEnv = "GANTRY_PROCESS_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		helperMain()
		return
	}
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "gantry-process-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	appRoot = filepath.Join(tmp, "app")
	if _, err := drivertest.BuildTestApp(appRoot); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if artifacts, err = artifact.NewLocal(filepath.Join(tmp, "artifacts")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if appDigest, err = putTree(artifacts, appRoot, "bin"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	appName = fmt.Sprintf("proctest%d", os.Getpid())
	code := m.Run()
	// Every test stops what it started: a leftover instance is a bug, in a
	// test or in Stop.
	if left := leftovers(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "instances left running after the tests: pids %v\n", left)
		for _, pid := range left {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		return 1
	}
	return code
}

// leftovers lists the processes whose environment names this run's app.
func leftovers() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(b, []byte{0}) {
			if string(kv) == "GANTRY_APP="+appName {
				if st, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && !bytes.Contains(st, []byte(") Z ")) {
					pids = append(pids, pid)
				}
			}
		}
	}
	return pids
}

// putTree stores a tarball of paths under root and returns its digest.
func putTree(store *artifact.Local, root string, paths ...string) (string, error) {
	var buf bytes.Buffer
	if err := tarball.Write(&buf, root, paths); err != nil {
		return "", err
	}
	digest, _, err := store.Put(context.Background(), &buf)
	return digest, err
}

// MustDriver returns a driver on a fresh state directory.
func MustDriver(tb testing.TB) *process.Driver {
	tb.Helper()
	d, err := process.New(tb.TempDir(), artifacts, nil)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func appSpec(slot, service string, index, port int) gantry.InstanceSpec {
	return gantry.InstanceSpec{
		App: appName, Env: "test", Slot: slot, Service: service, Index: index,
		ReleaseID: "r-" + service,
		Artifact:  gantry.Artifact{Kind: gantry.ArtifactTarball, Digest: appDigest},
		Command:   "bin/testapp",
		Port:      port,
		Stop:      gantry.StopSpec{Signal: "SIGTERM", Timeout: 10 * time.Second},
		Health:    gantry.HealthCheck{Path: "/up"},
		Vars:      map[string]string{},
	}
}

func TestDriverSuite(t *testing.T) {
	d := MustDriver(t)
	drivertest.Run(t, drivertest.Harness{
		Driver: d,
		Spec: func(t *testing.T, slot, service string, index, port int) gantry.InstanceSpec {
			return appSpec(slot, service, index, port)
		},
		Restart: func(t *testing.T) gantry.Driver {
			d2, err := process.New(d.Dir, artifacts, nil)
			if err != nil {
				t.Fatal(err)
			}
			return d2
		},
	})
}

// MustStart starts spec on d and stops the instance when the test ends.
func MustStart(tb testing.TB, d *process.Driver, spec gantry.InstanceSpec) gantry.Instance {
	tb.Helper()
	inst, err := d.Start(context.Background(), spec)
	if err != nil {
		tb.Fatalf("Start: %v", err)
	}
	tb.Cleanup(func() {
		if err := d.Stop(context.Background(), inst, gantry.StopSpec{Timeout: time.Second}); err != nil {
			tb.Errorf("cleanup Stop: %v", err)
		}
	})
	return inst
}

// helperMain is a stand-in server run as a child of the test: it starts one
// instance, prints it as JSON, and waits to be killed with SIGKILL.
func helperMain() {
	store, err := artifact.NewLocal(os.Getenv("HELPER_ARTIFACTS"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	d, err := process.New(os.Getenv("HELPER_DIR"), store, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	appDigest = os.Getenv("HELPER_DIGEST")
	appName = os.Getenv("HELPER_APP")
	port, _ := strconv.Atoi(os.Getenv("HELPER_PORT"))
	inst, err := d.Start(context.Background(), appSpec("blue", "orphan", 0, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(inst)
	select {}
}

// TestInstanceOutlivesServer kills the server that started an instance with
// SIGKILL, then checks that the instance still serves, that its log still
// receives its output (a pipe would have broken), and that a new driver
// attaches to it and stops it.
func TestInstanceOutlivesServer(t *testing.T) {
	dir := t.TempDir()
	port := drivertest.FreePort(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(exe, "-test.run=^$")
	helper.Env = append(os.Environ(), helperEnv+"=1", "HELPER_DIR="+dir, "HELPER_ARTIFACTS="+artifacts.Dir,
		"HELPER_DIGEST="+appDigest, "HELPER_PORT="+strconv.Itoa(port), "HELPER_APP="+appName)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { helper.Process.Kill(); helper.Wait() })
	line, err := bufio.NewReader(out).ReadBytes('\n')
	if err != nil {
		t.Fatalf("read the helper's instance: %v", err)
	}
	var inst gantry.Instance
	if err := json.Unmarshal(line, &inst); err != nil {
		t.Fatalf("decode the helper's instance %q: %v", line, err)
	}
	d := MustDriver(t)
	d.Dir = dir
	t.Cleanup(func() { d.Stop(context.Background(), inst, gantry.StopSpec{Timeout: time.Second}) })
	drivertest.WaitUp(t, inst)

	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	helper.Wait()

	if err := d.Attach(context.Background(), inst); err != nil {
		t.Fatalf("Attach after the server was killed: %v", err)
	}
	drivertest.MustGet(t, inst, "/log?line=written-after-the-server-died")
	var buf bytes.Buffer
	if err := d.Logs(context.Background(), inst, 1, false, &buf); err != nil {
		t.Fatal(err)
	}
	if got, want := buf.String(), "written-after-the-server-died\n"; got != want {
		t.Errorf("last log line after the server died: got %q, want %q", got, want)
	}
	if err := d.Stop(context.Background(), inst, gantry.StopSpec{Timeout: 10 * time.Second}); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if st, err := d.Inspect(context.Background(), inst); err != nil || st.State == gantry.InstanceRunning {
		t.Errorf("Inspect after Stop: %+v, %v; want not running", st, err)
	}
}

func TestExitCodeSurvivesRestart(t *testing.T) {
	d := MustDriver(t)
	inst := MustStart(t, d, appSpec("blue", "web", 0, drivertest.FreePort(t)))
	drivertest.WaitUp(t, inst)
	drivertest.Get(inst, "/exit?code=7")
	waitState(t, d, inst, gantry.InstanceExited)
	d2, err := process.New(d.Dir, artifacts, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := d2.Inspect(context.Background(), inst)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != gantry.InstanceExited || st.ExitCode != 7 {
		t.Errorf("Inspect by a restarted driver: got %+v, want exited with code 7", st)
	}
}

func TestSecretsStayOut(t *testing.T) {
	var logbuf drivertest.SyncBuffer
	d := MustDriver(t)
	d.Logger = slog.New(slog.NewTextHandler(&logbuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const secret = "hunter2-very-secret"
	spec := appSpec("blue", "web", 0, drivertest.FreePort(t))
	spec.Vars["DATABASE_URL"] = "postgres://u:" + secret + "@db/x"
	inst := MustStart(t, d, spec)
	drivertest.WaitUp(t, inst)
	if got := drivertest.MustGet(t, inst, "/env?name=DATABASE_URL"); !strings.Contains(got, secret) {
		t.Fatalf("the instance does not see its secret: %q", got)
	}
	if err := d.Stop(context.Background(), inst, gantry.StopSpec{Timeout: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal([]byte(inst.Handle), &h); err != nil {
		t.Fatalf("handle is not JSON: %v", err)
	}
	for _, key := range []string{"pid", "pgid", "start_time", "log", "command"} {
		if _, ok := h[key]; !ok {
			t.Errorf("handle %s lacks %q", inst.Handle, key)
		}
	}
	logFile, _ := h["log"].(string)
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if logbuf.String() == "" {
		t.Fatal("the driver logged nothing: the check below would prove nothing")
	}
	for what, text := range map[string]string{"handle": inst.Handle, "driver log": logbuf.String(), "instance log": string(b)} {
		if strings.Contains(text, secret) {
			t.Errorf("the %s holds the secret:\n%s", what, text)
		}
	}
}

// TestCompoundCommand runs a command that keeps sh as the group's leader:
// Stop must still reach and kill the program it started.
func TestCompoundCommand(t *testing.T) {
	d := MustDriver(t)
	spec := appSpec("blue", "web", 0, drivertest.FreePort(t))
	spec.Command = "echo compound start && bin/testapp"
	spec.Vars["TESTAPP_IGNORE_SIGTERM"] = "1"
	inst := MustStart(t, d, spec)
	drivertest.WaitUp(t, inst)
	var h struct{ PGID int }
	json.Unmarshal([]byte(inst.Handle), &h)
	if err := d.Stop(context.Background(), inst, gantry.StopSpec{Timeout: 300 * time.Millisecond}); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, _, err := drivertest.Get(inst, "/up"); err == nil {
		t.Error("the program behind sh still answers after Stop")
	}
	if err := syscall.Kill(-h.PGID, 0); err == nil && groupHasLive(h.PGID) {
		t.Errorf("process group %d still has live members after Stop", h.PGID)
	}
}

// groupHasLive reports whether a non-zombie process of group pgid runs.
func groupHasLive(pgid int) bool {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 2 && f[2] == strconv.Itoa(pgid) && f[0] != "Z" {
			return true
		}
	}
	return false
}

// waitState waits until Inspect reports want.
func waitState(tb testing.TB, d gantry.Driver, inst gantry.Instance, want string) {
	tb.Helper()
	var st gantry.InstanceState
	var err error
	if !drivertest.WaitFor(15*time.Second, func() bool {
		st, err = d.Inspect(context.Background(), inst)
		return err == nil && st.State == want
	}) {
		tb.Fatalf("Inspect: got %+v, %v; want state %q", st, err, want)
	}
}
