package hook_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gantry "github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/hook"
)

func commands(cmds ...string) []gantry.Hook {
	var hs []gantry.Hook
	for _, c := range cmds {
		hs = append(hs, gantry.Hook{Command: c})
	}
	return hs
}

// TestBeforeStopsAtFirstFailure: a failing pre-hook stops the phase, is
// returned as EFAILED with its output, and is tried only once.
func TestBeforeStopsAtFirstFailure(t *testing.T) {
	r, _ := MustRunner(t)
	dir := t.TempDir()
	hc := sampleContext()
	hc.Phase, hc.Dir = "before_deploy", dir
	results, err := r.Before(context.Background(), commands(
		"echo first >> ran",
		"echo checking; echo 'migration lock held' >&2; echo second >> ran; exit 3",
		"echo third >> ran",
	), hc)
	if err == nil {
		t.Fatal("Before: got nil error, want the second hook's failure")
	}
	if got, want := gantry.ErrorCode(err), gantry.EFAILED; got != want {
		t.Errorf("error code = %q, want %q (%v)", got, want, err)
	}
	if msg := gantry.ErrorMessage(err); !strings.Contains(msg, "before_deploy hook 2") || !strings.Contains(msg, "exit status 3") {
		t.Errorf("error message = %q, want it to name before_deploy hook 2 and exit status 3", msg)
	}
	if got, want := len(results), 2; got != want {
		t.Fatalf("results = %d, want %d: %+v", got, want, results)
	}
	last := results[1]
	if last.OK || last.ExitCode != 3 || last.Attempts != 1 {
		t.Errorf("failed result = ok %v, exit %d, attempts %d; want false, 3, 1", last.OK, last.ExitCode, last.Attempts)
	}
	if want := "checking\nmigration lock held\n"; last.Output != want {
		t.Errorf("output = %q, want %q", last.Output, want)
	}
	ran, err := os.ReadFile(filepath.Join(dir, "ran"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(ran), "first\nsecond\n"; got != want {
		t.Errorf("hooks that ran = %q, want %q (the third must not run)", got, want)
	}
}

// TestBeforeAllSucceed returns a result per hook and no error.
func TestBeforeAllSucceed(t *testing.T) {
	r, _ := MustRunner(t)
	results, err := r.Before(context.Background(), commands("true", "echo ok"), sampleContext())
	if err != nil {
		t.Fatalf("Before: %v", err)
	}
	if len(results) != 2 || !results[0].OK || !results[1].OK || results[1].Output != "ok\n" {
		t.Errorf("results = %+v, want two successes, the second with output ok", results)
	}
}

// TestBeforeCanceled runs nothing once the operation is canceled.
func TestBeforeCanceled(t *testing.T) {
	r, _ := MustRunner(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	hc := sampleContext()
	hc.Dir = t.TempDir()
	results, err := r.Before(ctx, commands("touch ran"), hc)
	if err == nil || len(results) != 0 {
		t.Errorf("Before(canceled) = %d results, %v; want none and an error", len(results), err)
	}
	if _, err := os.Stat(filepath.Join(hc.Dir, "ran")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the hook ran after cancellation: stat = %v", err)
	}
}

// TestAfterRetriesCommand: a post-hook failing twice, then succeeding, is
// reported as a success after 3 attempts, with backoff between them.
func TestAfterRetriesCommand(t *testing.T) {
	r, _ := MustRunner(t)
	var backoffs []int
	r.Backoff = func(n int) time.Duration { backoffs = append(backoffs, n); return time.Millisecond }
	hc := sampleContext()
	hc.Dir = t.TempDir()
	script := `n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo "try $n"; [ $n -ge 3 ]`
	results := r.After(context.Background(), commands(script), hc)
	if len(results) != 1 {
		t.Fatalf("results = %d, want 1", len(results))
	}
	got := results[0]
	if !got.OK || got.Attempts != 3 || got.ExitCode != 0 || got.Output != "try 3\n" {
		t.Errorf("result = %+v, want ok after 3 attempts with output \"try 3\\n\"", got)
	}
	if want := []int{1, 2}; !slices.Equal(backoffs, want) {
		t.Errorf("backoff asked after attempts %v, want %v", backoffs, want)
	}
}

// TestAfterReportsEveryFailure: a post-hook that always fails is tried
// Attempts times and reported; the hooks after it still run.
func TestAfterReportsEveryFailure(t *testing.T) {
	r, _ := MustRunner(t)
	r.Attempts = 3
	hc := sampleContext()
	hc.Dir = t.TempDir()
	results := r.After(context.Background(), commands("echo nope >> tries; exit 7", "echo fine"), hc)
	if len(results) != 2 {
		t.Fatalf("results = %d, want 2", len(results))
	}
	if f := results[0]; f.OK || f.Attempts != 3 || f.ExitCode != 7 || f.Error != "exit status 7" {
		t.Errorf("failing hook = %+v, want 3 attempts ending in exit status 7", f)
	}
	if tries, _ := os.ReadFile(filepath.Join(hc.Dir, "tries")); strings.Count(string(tries), "nope") != 3 {
		t.Errorf("the command ran %d times, want 3", strings.Count(string(tries), "nope"))
	}
	if !results[1].OK {
		t.Errorf("second hook = %+v, want it run and ok", results[1])
	}
	failed := hook.Failed(results)
	if len(failed) != 1 || failed[0].Index != 0 {
		t.Errorf("Failed = %+v, want the first hook only", failed)
	}
	if err := failed[0].Err(); gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(err.Error(), "after 3 attempt(s)") {
		t.Errorf("Err() = %v, want EFAILED saying 3 attempts", err)
	}
}

// TestCommandEnvironment: a command runs in its Dir and gets the documented
// GANTRY_* variables, the fixed PATH, HOME (the context's Home), LANG, the
// environment's vars and secrets, and nothing else of the server's
// environment: not a marker variable, not the server's PATH or HOME.
// GANTRY_*, PATH and HOME cannot be overridden by vars.
func TestCommandEnvironment(t *testing.T) {
	t.Setenv("SERVER_ONLY_SETTING", "leak")
	t.Setenv("PATH", os.Getenv("PATH")+":/server/only/bin")
	t.Setenv("HOME", "/server/only/home")
	r, _ := MustRunner(t)
	hc := sampleContext()
	hc.Dir, hc.Home = t.TempDir(), t.TempDir()
	hc.Vars = map[string]string{"LOG_LEVEL": "debug", "GANTRY_APP": "spoofed", "HOME": "/spoofed"}
	hc.Secrets = map[string]string{"CDN_TOKEN": "tok-123456"}
	results, err := r.Before(context.Background(), commands(`env | sort; echo "pwd=$(pwd)"`), hc)
	if err != nil {
		t.Fatalf("Before: %v", err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(results[0].Output), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{
		"GANTRY_APP": "shop", "GANTRY_ENV": "prod", "GANTRY_RELEASE": "rel-7f3a",
		"GANTRY_VERSION": "16.03.1b", "GANTRY_COMMIT": "0123456789abcdef0123456789abcdef01234567",
		"GANTRY_ACTOR": "alice", "GANTRY_PHASE": "after_switch", "GANTRY_DEPLOYMENT": "42",
		"GANTRY_URL": "http://shop.localhost:8080", "LOG_LEVEL": "debug",
		// The secret reaches the command; only its echo in the output is masked.
		"CDN_TOKEN": "[secret]",
		"PATH":      gantry.CommandPath,
		"HOME":      hc.Home,
		"LANG":      "C.UTF-8",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	// Exactly the documented names: anything else came from the server.
	allowed := map[string]bool{"pwd": true, "PWD": true, "SHLVL": true, "_": true, "OLDPWD": true}
	for k := range want {
		allowed[k] = true
	}
	for k, v := range got {
		if !allowed[k] {
			t.Errorf("%s=%q reached the hook: it is not in the documented environment", k, v)
		}
	}
	if wd, _ := filepath.EvalSymlinks(hc.Dir); got["pwd"] != wd && got["pwd"] != hc.Dir {
		t.Errorf("pwd = %q, want the context's Dir %q", got["pwd"], hc.Dir)
	}
}

// TestSecretsMasked: secret values never appear in results or logs.
func TestSecretsMasked(t *testing.T) {
	r, logs := MustRunner(t)
	r.Attempts = 2
	hc := sampleContext()
	hc.Secrets = map[string]string{"DB_PASSWORD": "hunter2-hunter2", "SHORT": "ab"}
	results := r.After(context.Background(), commands(`echo "password is $DB_PASSWORD and $SHORT"; exit 1`), hc)
	got := results[0]
	if want := "password is [secret] and ab\n"; got.Output != want {
		t.Errorf("output = %q, want %q", got.Output, want)
	}
	if strings.Contains(logs.String(), "hunter2") {
		t.Errorf("a secret reached the log:\n%s", logs)
	}
}

// TestCommandOutputBounded keeps the tail of a chatty command, and says how
// much it cut.
func TestCommandOutputBounded(t *testing.T) {
	r, _ := MustRunner(t)
	r.OutputLimit = 1000
	results, err := r.Before(context.Background(), commands(`i=0; while [ $i -lt 20000 ]; do echo "line $i"; i=$((i+1)); done`), sampleContext())
	if err != nil {
		t.Fatalf("Before: %v", err)
	}
	out := results[0].Output
	head, kept, ok := strings.Cut(out, "\n")
	if !ok || !strings.HasPrefix(head, "[") || !strings.HasSuffix(head, " earlier bytes cut]") {
		t.Fatalf("output starts %q, want a note of the bytes cut", head)
	}
	if len(kept) != 1000 {
		t.Errorf("kept %d bytes, want 1000", len(kept))
	}
	if !strings.HasSuffix(kept, "line 19998\nline 19999\n") {
		t.Errorf("output ends %q, want the last lines", kept[len(kept)-30:])
	}
	total := 0
	for i := range 20000 {
		total += len("line \n") + len(strconv.Itoa(i))
	}
	if want := "[" + strconv.Itoa(total-1000) + " earlier bytes cut]"; head != want {
		t.Errorf("note = %q, want %q", head, want)
	}
}

// TestCommandTimeout kills the shell and what it started when a command
// outlives CommandTimeout, and reports it as a timeout.
func TestCommandTimeout(t *testing.T) {
	r, _ := MustRunner(t)
	// Long enough for the shell to start and write under CPU contention.
	r.CommandTimeout = 1500 * time.Millisecond
	hc := sampleContext()
	hc.Dir = t.TempDir()
	start := time.Now()
	results, err := r.Before(context.Background(), commands(`sleep 60 & echo $! > child; echo started; wait`), hc)
	if elapsed := time.Since(start); elapsed > 20*time.Second {
		t.Errorf("Before took %s, want it bounded by the timeout", elapsed)
	}
	if err == nil || !strings.Contains(gantry.ErrorMessage(err), "timed out after 1.5s") {
		t.Fatalf("Before = %v, want a timeout", err)
	}
	if got := results[0]; got.ExitCode != -1 || got.Output != "started\n" {
		t.Errorf("result = exit %d, output %q; want -1 and the output so far", got.ExitCode, got.Output)
	}
	data, err := os.ReadFile(filepath.Join(hc.Dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("the hook's child %d survived the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid runs; a zombie that no init reaps is dead.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z")
}
