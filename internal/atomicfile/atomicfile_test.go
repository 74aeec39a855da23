package atomicfile_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/internal/atomicfile"
)

// The test binary doubles as the writer process that TestKillNeverTears
// kills: with this variable set, TestMain loops writing instead of testing.
const writerEnv = "ATOMICFILE_TEST_WRITER"

type doc struct {
	Seq   int      `json:"seq"`
	Items []string `json:"items"`
}

func TestMain(m *testing.M) {
	if path := os.Getenv(writerEnv); path != "" {
		writeForever(path)
		return
	}
	os.Exit(m.Run())
}

// writeForever rewrites path with a ~1 MB JSON document whose sequence number
// continues from the file's, so the parent can tell that writes happened.
func writeForever(path string) {
	var d doc
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &d); err != nil {
			fmt.Fprintf(os.Stderr, "torn file at start: %v\n", err)
			os.Exit(3)
		}
	}
	for {
		d.Seq++
		d.Items = d.Items[:0]
		for i := range 20000 {
			d.Items = append(d.Items, fmt.Sprintf("item-%d-%d-padding-padding", d.Seq, i))
		}
		b, err := json.Marshal(d)
		if err != nil {
			os.Exit(4)
		}
		if err := atomicfile.Write(path, b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(5)
		}
	}
}

func MustReadDoc(tb testing.TB, path string) doc {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("read %s: %v", path, err)
	}
	var d doc
	if err := json.Unmarshal(b, &d); err != nil {
		tb.Fatalf("%s does not parse (%d bytes): %v", path, len(b), err)
	}
	return d
}

func TestWriteReplaces(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	for _, content := range []string{"first", "second, longer than the first", "3"} {
		if err := atomicfile.Write(path, []byte(content), 0o600); err != nil {
			t.Fatalf("Write: %v", err)
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != content {
			t.Errorf("content: got %q, want %q", got, content)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("perm: got %v, want %v", got, want)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only state.json", names)
	}
}

func TestWriteRelativePath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := atomicfile.Write("plain.json", []byte("{}"), 0o644); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "plain.json")); string(got) != "{}" {
		t.Errorf("content: got %q, want %q", got, "{}")
	}
}

func TestWriteErrorKeepsOld(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := atomicfile.Write(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A directory in the way of the rename makes the write fail late, after
	// the temporary file exists: it must be cleaned up.
	target := filepath.Join(dir, "adir")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := atomicfile.Write(target, []byte("new"), 0o644)
	if err == nil {
		t.Fatal("Write over a non-empty directory: got nil error")
	}
	if !strings.Contains(err.Error(), target) {
		t.Errorf("error %q does not name %s", err, target)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
	if got, _ := os.ReadFile(path); !bytes.Equal(got, []byte("old")) {
		t.Errorf("old file: got %q, want %q", got, "old")
	}
	if err := atomicfile.Write(filepath.Join(dir, "missing", "f"), nil, 0o644); err == nil {
		t.Error("Write into a missing directory: got nil error")
	}
}

// TestKillNeverTears kills a writer process with SIGKILL at random moments;
// every time, the file must parse and its sequence must not go back.
func TestKillNeverTears(t *testing.T) {
	if testing.Short() {
		t.Skip("re-executes the test binary")
	}
	path := filepath.Join(t.TempDir(), "state.json")
	rounds := 25
	last := 0
	for round := range rounds {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), writerEnv+"="+path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until this writer has completed at least one write, so
		// each round kills a process that is busy rewriting the file.
		deadline := time.Now().Add(20 * time.Second)
		for {
			if b, err := os.ReadFile(path); err == nil && json.Valid(b) {
				var d doc
				_ = json.Unmarshal(b, &d)
				if d.Seq > last {
					break
				}
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("round %d: writer made no progress in 20s; stderr: %s", round, stderr.String())
			}
			time.Sleep(time.Millisecond)
		}
		// The random delay is the point of the test: the kill lands
		// anywhere in a write, rename or sync.
		time.Sleep(time.Duration(rand.IntN(30000)) * time.Microsecond)
		if err := cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != -1 {
			t.Fatalf("round %d: writer ended with %v, want killed; stderr: %s", round, err, stderr.String())
		}
		d := MustReadDoc(t, path)
		if d.Seq < last {
			t.Fatalf("round %d: seq went back from %d to %d", round, last, d.Seq)
		}
		if len(d.Items) != 20000 {
			t.Fatalf("round %d: got %d items, want 20000", round, len(d.Items))
		}
		last = d.Seq
	}
	if last < rounds {
		t.Errorf("after %d rounds seq is %d, want at least %d", rounds, last, rounds)
	}
}
