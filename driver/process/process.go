// Package process is the embedded runtime driver: it runs each instance as a
// local process group, unpacked from a release's tarball artifact, with its
// output appended to a log file that the instance writes directly.
//
// Instances must outlive the server: the driver never puts a pipe between an
// instance and its log, never ties an instance's life to a context or to the
// server's, and finds instances again after a restart by pid and process
// start time. It must not run image artifacts, must not log or persist an
// instance's variables (they carry secrets), and must not signal a process
// it cannot prove it started.
package process

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/portalloc"
)

var _ gantry.Driver = (*Driver)(nil)

// Defaults for the Driver's optional fields.
const (
	DefaultLogMaxBytes    = 10 << 20
	DefaultRotateInterval = 5 * time.Second
)

// Attribute keys of the driver's log records.
const (
	attrInstance = "instance"
	attrPID      = "pid"
	attrRelease  = "release"
	attrSignal   = "signal"
	attrDetail   = "detail"
	attrError    = "error"
)

// Driver runs instances as local process groups. New fills in defaults; a
// Driver built by hand needs at least Dir and Artifacts.
type Driver struct {
	// Dir keeps the driver's state: releases/<hex> (unpacked artifacts),
	// logs/<app>/<env>/<slot>/<service>-<index>.log, and run/ (exit records).
	Dir       string
	Artifacts gantry.ArtifactStore
	Logger    *slog.Logger
	// LogMaxBytes rotates an instance's log past this size, keeping one old
	// file (<log>.1). Default 10 MiB.
	LogMaxBytes int64
	// RotateInterval is how often each supervised instance's log size is
	// checked. Logs and Inspect also rotate on the spot. Default 5s.
	RotateInterval time.Duration
	// Now stamps Instance.StartedAt and exit records (default time.Now).
	Now func() time.Time
	// Ports picks the port of an instance started without one (default
	// portalloc.Default, shared with the other drivers of the process).
	Ports *portalloc.Allocator

	mu       sync.Mutex
	children map[string]*child   // instances this value started, by handle key
	watching map[string]struct{} // instances with a rotation loop, by handle key
	unpackMu sync.Mutex
}

// child is an instance started by this Driver value, reaped by a goroutine
// so that it never lingers as a zombie.
type child struct {
	done chan struct{} // closed once reaped; rec is set before
	rec  exitRecord
}

// New returns a driver keeping its state under dir, creating it.
func New(dir string, artifacts gantry.ArtifactStore, logger *slog.Logger) (*Driver, error) {
	if artifacts == nil {
		return nil, errors.New("process driver: no artifact store")
	}
	for _, sub := range []string{"releases", "logs", "run"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("process driver: %w", err)
		}
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Driver{Dir: dir, Artifacts: artifacts, Logger: logger}, nil
}

// Name is the runtime name used in manifests.
func (d *Driver) Name() string { return "process" }

func (d *Driver) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

func (d *Driver) ports() *portalloc.Allocator {
	if d.Ports != nil {
		return d.Ports
	}
	return portalloc.Default
}

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// Start unpacks the spec's artifact (once per digest) and runs its command
// with `sh -c` in the unpacked directory. It returns once the process runs;
// whether it serves is for the health checks to find out.
func (d *Driver) Start(ctx context.Context, spec gantry.InstanceSpec) (gantry.Instance, error) {
	inst, err := d.start(ctx, spec)
	if gantry.IsDiskFull(err) {
		// Its log or its identity could not be written: the operator's
		// to fix, and said as such rather than as an internal error.
		return inst, gantry.DiskFullError("the process driver's directory "+d.Dir, err)
	}
	return inst, err
}

func (d *Driver) start(ctx context.Context, spec gantry.InstanceSpec) (gantry.Instance, error) {
	if err := validateSpec(spec); err != nil {
		return gantry.Instance{}, err
	}
	if spec.Port == 0 {
		p, err := d.ports().Take()
		if err != nil {
			return gantry.Instance{}, fmt.Errorf("start %s-%d: %w", spec.Service, spec.Index, err)
		}
		spec.Port = p
	}
	env, err := environ(spec)
	if err != nil {
		return gantry.Instance{}, err
	}
	rel, err := d.unpack(ctx, spec.Artifact.Digest)
	if err != nil {
		return gantry.Instance{}, err
	}
	logPath := d.logPath(spec)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return gantry.Instance{}, fmt.Errorf("start %s-%d: %w", spec.Service, spec.Index, err)
	}
	// The instance gets this file itself as stdout and stderr: with O_APPEND
	// every write lands at the end even after the file is truncated by a
	// rotation, and no pipe means no SIGPIPE once the server is gone.
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	if err != nil {
		return gantry.Instance{}, fmt.Errorf("start %s-%d: %w", spec.Service, spec.Index, err)
	}
	defer f.Close()

	// A marker between the runs of an instance that share a log file. The
	// command comes from the manifest, not from Vars: it holds no secret.
	started := d.now()
	fmt.Fprintf(f, "gantry: %s starting %s-%d release %s: %s\n",
		started.UTC().Format(time.RFC3339), spec.Service, spec.Index, spec.ReleaseID, spec.Command)

	cmd := exec.Command("/bin/sh", "-c", shellCommand(spec.Command))
	cmd.Dir = rel
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return gantry.Instance{}, fmt.Errorf("start %s-%d: %w", spec.Service, spec.Index, err)
	}
	pid := cmd.Process.Pid
	// Not reaped before cmd.Wait, so /proc/<pid> exists even if it exited.
	st, err := readStat(pid)
	if err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return gantry.Instance{}, fmt.Errorf("start %s-%d: read process start time: %w", spec.Service, spec.Index, err)
	}
	h := handle{PID: pid, PGID: pid, StartTime: st.StartTime, Log: logPath, Command: spec.Command, Release: rel}
	inst := gantry.Instance{Service: spec.Service, Index: spec.Index, Handle: h.encode(), StartedAt: started, ReleaseID: spec.ReleaseID}
	if spec.Port > 0 {
		inst.Addr = "127.0.0.1:" + strconv.Itoa(spec.Port)
	}
	// The instance is known by its identity before Start returns: if the
	// server dies before the orchestrator saves the handle, recovery finds
	// it (ListInstances). One that cannot be recorded does not run.
	if err := d.writeIdentity(h, identity{App: spec.App, Env: spec.Env, Slot: spec.Slot, Instance: inst}); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return gantry.Instance{}, fmt.Errorf("start %s-%d: record the instance: %w", spec.Service, spec.Index, err)
	}

	c := &child{done: make(chan struct{})}
	d.mu.Lock()
	if d.children == nil {
		d.children = map[string]*child{}
	}
	d.children[h.key()] = c
	d.mu.Unlock()
	name := fmt.Sprintf("%s-%d", spec.Service, spec.Index)
	go d.reap(cmd, h, c, name)
	d.watch(h, c.done)
	d.logger().Info("instance started", attrInstance, name, attrPID, pid, attrRelease, spec.ReleaseID)

	return inst, nil
}

// reap waits for a child so it does not stay a zombie, and records how it
// ended for Inspect, including Inspect by a driver created after a restart.
func (d *Driver) reap(cmd *exec.Cmd, h handle, c *child, name string) {
	_ = cmd.Wait() // the exit status is in ProcessState; I/O goes to a file
	rec := exitRecord{Code: -1, Detail: "exited", At: d.now()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		switch {
		case ws.Signaled():
			rec.Code = 128 + int(ws.Signal())
			rec.Detail = "killed by signal " + signalName(ws.Signal())
		case ws.Exited():
			rec.Code = ws.ExitStatus()
			rec.Detail = "exited with code " + strconv.Itoa(rec.Code)
		}
	}
	if err := d.writeExit(h, rec); err != nil {
		d.logger().Warn("record instance exit", attrInstance, name, attrPID, h.PID, attrError, err)
	}
	d.logger().Info("instance exited", attrInstance, name, attrPID, h.PID, attrDetail, rec.Detail)
	c.rec = rec
	close(c.done)
}

func (d *Driver) child(h handle) *child {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.children[h.key()]
}

// forget drops what the driver keeps about a stopped instance.
func (d *Driver) forget(h handle) {
	d.mu.Lock()
	delete(d.children, h.key())
	d.mu.Unlock()
	_ = os.Remove(d.exitPath(h))
	_ = os.Remove(d.identityPath(h))
}

// validateSpec refuses what cannot run here, and names that would place a
// log file outside Dir.
func validateSpec(spec gantry.InstanceSpec) error {
	if spec.Artifact.Kind != "" && spec.Artifact.Kind != gantry.ArtifactTarball {
		return gantry.Errorf(gantry.EINVALID, "service %s: the process driver runs tarball artifacts, not %q", spec.Service, spec.Artifact.Kind)
	}
	if strings.TrimSpace(spec.Command) == "" {
		return gantry.Errorf(gantry.EINVALID, "service %s: no command to run", spec.Service)
	}
	for _, f := range []struct{ what, v string }{
		{"app", spec.App}, {"env", spec.Env}, {"slot", spec.Slot}, {"service", spec.Service},
	} {
		if f.v == "" || f.v == "." || f.v == ".." || strings.ContainsAny(f.v, "/\\\x00") {
			return gantry.Errorf(gantry.EINVALID, "instance %s %q: want a non-empty name without slashes", f.what, f.v)
		}
	}
	if spec.Index < 0 {
		return gantry.Errorf(gantry.EINVALID, "service %s: instance index %d is negative", spec.Service, spec.Index)
	}
	if spec.Port < 0 || spec.Port > 65535 {
		return gantry.Errorf(gantry.EINVALID, "service %s: port %d is out of range", spec.Service, spec.Port)
	}
	return nil
}

func (d *Driver) logPath(spec gantry.InstanceSpec) string {
	return filepath.Join(d.Dir, "logs", spec.App, spec.Env, spec.Slot, fmt.Sprintf("%s-%d.log", spec.Service, spec.Index))
}

// environ builds an instance's whole environment: nothing of the server's
// leaks in but PATH and HOME, and the Gantry variables win over Vars.
func environ(spec gantry.InstanceSpec) ([]string, error) {
	m := map[string]string{"PATH": os.Getenv("PATH")}
	if m["PATH"] == "" {
		m["PATH"] = "/usr/local/bin:/usr/bin:/bin"
	}
	if home := os.Getenv("HOME"); home != "" {
		m["HOME"] = home
	}
	return spec.Environ(m)
}

// shellCommand prefixes a simple command with exec, so that the instance's
// own process, not a waiting shell, leads the group: its exit code is then
// the instance's and its pid is the one Inspect watches. Anything with shell
// control syntax runs as given; Stop signals the whole group either way.
func shellCommand(c string) string {
	c = strings.TrimSpace(c)
	if strings.ContainsAny(c, ";&|\n(){}`") {
		return c
	}
	first := strings.Fields(c)[0]
	switch first {
	case "exec", "if", "for", "while", "until", "case", "!", "[[", "time":
		return c
	}
	if strings.Contains(first, "=") {
		return c
	}
	return "exec " + c
}

func signalName(s syscall.Signal) string {
	for name, sig := range signals {
		if sig == s {
			return name
		}
	}
	return "signal " + strconv.Itoa(int(s))
}

var _ gantry.PortReserver = (*Driver)(nil)

// ReservePort hands out the port an instance will be started on, from the
// allocator Start uses for an instance started without one.
func (d *Driver) ReservePort() (int, error) { return d.ports().Take() }
