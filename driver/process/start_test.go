package process_test

import (
	"context"
	"encoding/json"
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
)

func TestUnpackOncePerDigest(t *testing.T) {
	d := MustDriver(t)
	a := MustStart(t, d, appSpec("blue", "web", 0, drivertest.FreePort(t)))
	b := MustStart(t, d, appSpec("green", "web", 1, drivertest.FreePort(t)))
	drivertest.WaitUp(t, a)
	drivertest.WaitUp(t, b)
	ents, err := os.ReadDir(filepath.Join(d.Dir, "releases"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := strings.TrimPrefix(appDigest, "sha256:")
	if len(names) != 1 || names[0] != want {
		t.Errorf("releases/ holds %q, want just [%s]", names, want)
	}
	for _, inst := range []gantry.Instance{a, b} {
		var h struct {
			ReleaseDir string `json:"release_dir"`
		}
		json.Unmarshal([]byte(inst.Handle), &h)
		if h.ReleaseDir != filepath.Join(d.Dir, "releases", want) {
			t.Errorf("instance %s-%d runs in %q", inst.Service, inst.Index, h.ReleaseDir)
		}
	}
}

// TestCorruptArtifactRefused swaps an artifact's bytes for another valid
// tarball: only the store's digest check can tell, and nothing may run.
func TestCorruptArtifactRefused(t *testing.T) {
	store, err := artifact.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good, err := putTree(store, appRoot, "bin")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "bin", "testapp"), []byte("#!/bin/sh\necho impostor\n"), 0o755)
	other, err := putTree(store, src, "bin")
	if err != nil {
		t.Fatal(err)
	}
	path := func(digest string) string {
		hex := strings.TrimPrefix(digest, "sha256:")
		return filepath.Join(store.Dir, "sha256", hex[:2], hex)
	}
	b, err := os.ReadFile(path(other))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path(good), b, 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := process.New(t.TempDir(), store, nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := appSpec("blue", "web", 0, drivertest.FreePort(t))
	spec.Artifact.Digest = good
	inst, err := d.Start(context.Background(), spec)
	if err == nil {
		d.Stop(context.Background(), inst, gantry.StopSpec{Timeout: time.Second})
		t.Fatal("Start of a corrupted artifact: want an error")
	}
	if !strings.Contains(err.Error(), "corrupt") {
		t.Errorf("Start of a corrupted artifact: error %v, want one saying it is corrupt", err)
	}
	ents, _ := os.ReadDir(filepath.Join(d.Dir, "releases"))
	if len(ents) != 0 {
		t.Errorf("releases/ holds %d entries after a refused artifact, want none", len(ents))
	}
}

func TestStartRefusesBadSpecs(t *testing.T) {
	d := MustDriver(t)
	missing := "sha256:" + strings.Repeat("ab", 32)
	for _, tt := range []struct {
		name string
		edit func(*gantry.InstanceSpec)
		code string
	}{
		{"image artifact", func(s *gantry.InstanceSpec) { s.Artifact.Kind = gantry.ArtifactImage }, gantry.EINVALID},
		{"slot with a slash", func(s *gantry.InstanceSpec) { s.Slot = "../../etc" }, gantry.EINVALID},
		{"dot-dot service", func(s *gantry.InstanceSpec) { s.Service = ".." }, gantry.EINVALID},
		{"empty app", func(s *gantry.InstanceSpec) { s.App = "" }, gantry.EINVALID},
		{"empty command", func(s *gantry.InstanceSpec) { s.Command = "  " }, gantry.EINVALID},
		{"bad digest", func(s *gantry.InstanceSpec) { s.Artifact.Digest = "md5:1234" }, gantry.EINVALID},
		{"bad variable name", func(s *gantry.InstanceSpec) { s.Vars["A=B"] = "x" }, gantry.EINVALID},
		{"port out of range", func(s *gantry.InstanceSpec) { s.Port = 70000 }, gantry.EINVALID},
		{"missing artifact", func(s *gantry.InstanceSpec) { s.Artifact.Digest = missing }, gantry.ENOTFOUND},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := appSpec("blue", "web", 0, drivertest.FreePort(t))
			tt.edit(&spec)
			inst, err := d.Start(context.Background(), spec)
			if err == nil {
				d.Stop(context.Background(), inst, gantry.StopSpec{Timeout: time.Second})
			}
			if got := gantry.ErrorCode(err); got != tt.code {
				t.Errorf("Start: error %v (code %q), want code %q", err, got, tt.code)
			}
		})
	}
}

func TestBadHandle(t *testing.T) {
	d := MustDriver(t)
	for _, handle := range []string{
		"",
		"not json",
		`{"pid":1,"pgid":1,"start_time":5}`,
		`{"pid":4000,"pgid":1,"start_time":5}`, // a group other than its own
		`{"pid":4000,"pgid":4000}`,
	} {
		inst := gantry.Instance{Service: "web", Handle: handle}
		if err := d.Stop(context.Background(), inst, gantry.StopSpec{}); gantry.ErrorCode(err) != gantry.EINVALID {
			t.Errorf("Stop with handle %q: error %v, want code %q", handle, err, gantry.EINVALID)
		}
		if err := d.Attach(context.Background(), inst); gantry.ErrorCode(err) != gantry.EINVALID {
			t.Errorf("Attach with handle %q: error %v, want code %q", handle, err, gantry.EINVALID)
		}
	}
}

// TestReusedPIDLeftAlone hands the driver a handle whose pid now belongs to
// another process (another start time): the driver must not signal it.
func TestReusedPIDLeftAlone(t *testing.T) {
	d := MustDriver(t)
	other := exec.Command("sleep", "60")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	pid := other.Process.Pid
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	start, _ := strconv.ParseUint(f[19], 10, 64)
	handle, _ := json.Marshal(map[string]any{"pid": pid, "pgid": pid, "start_time": start + 1, "log": filepath.Join(d.Dir, "x.log")})
	inst := gantry.Instance{Service: "web", Handle: string(handle)}

	if err := d.Attach(context.Background(), inst); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Attach: error %v, want code %q", err, gantry.ENOTFOUND)
	}
	if st, err := d.Inspect(context.Background(), inst); err != nil || st.State != gantry.InstanceGone {
		t.Errorf("Inspect: got %+v, %v; want state %q", st, err, gantry.InstanceGone)
	}
	if err := d.Stop(context.Background(), inst, gantry.StopSpec{Signal: "SIGKILL", Timeout: time.Second}); err != nil {
		t.Errorf("Stop: %v, want nil", err)
	}
	if err := syscall.Kill(pid, 0); err != nil || !groupHasLive(pid) {
		t.Fatalf("the unrelated process %d was signalled: %v", pid, err)
	}

	// With the right start time, the same handle does reach it: the check
	// above passed for the right reason.
	handle, _ = json.Marshal(map[string]any{"pid": pid, "pgid": pid, "start_time": start, "log": filepath.Join(d.Dir, "x.log")})
	inst.Handle = string(handle)
	if err := d.Attach(context.Background(), inst); err != nil {
		t.Errorf("Attach with the right start time: %v", err)
	}
	if err := d.Stop(context.Background(), inst, gantry.StopSpec{Timeout: 5 * time.Second}); err != nil {
		t.Errorf("Stop with the right start time: %v", err)
	}
	if groupHasLive(pid) {
		t.Error("Stop with the right start time left the process running")
	}
}
