// Package memdriver is an in-memory runtime driver for fast tests of the
// rollout engine (package deploy). Each instance it starts is a real HTTP
// server on 127.0.0.1, so the orchestrator's health probes and the router
// reach it as they would a process, but nothing is executed, built or
// unpacked: thousands of instances start and stop in a test run. Knobs make
// an instance fail to start, never become healthy, exit, or answer 500, and
// every call is recorded so a test can assert what was asked of the driver.
//
// It is for tests only: it must never be wired into the gantry binary, and
// it must not import the packages it stands beside (deploy, proxy, sqlite).
package memdriver

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// Knobs change how an instance behaves. Zero values behave well.
type Knobs struct {
	// FailStart makes Start fail.
	FailStart bool
	// NeverHealthy makes the health path answer 503.
	NeverHealthy bool
	// ExitAfter makes the instance exit (code 1) that long after it started.
	ExitAfter time.Duration
	// Answer500 makes every path but the health path answer 500.
	Answer500 bool
}

func (k Knobs) or(o Knobs) Knobs {
	k.FailStart = k.FailStart || o.FailStart
	k.NeverHealthy = k.NeverHealthy || o.NeverHealthy
	k.Answer500 = k.Answer500 || o.Answer500
	if o.ExitAfter > 0 && (k.ExitAfter == 0 || o.ExitAfter < k.ExitAfter) {
		k.ExitAfter = o.ExitAfter
	}
	return k
}

// Call is one recorded call of the driver.
type Call struct {
	Op        string // "start", "stop", "attach", "inspect", "logs", and the slot operations
	App       string
	Env       string
	Slot      string
	Service   string
	Index     int
	ReleaseID string
	Addr      string
	Handle    string
	Namespace string // slot operations: the environment's runtime namespace
	Hosts     string // switch: the hosts, comma-separated
	Err       string
}

func (c Call) String() string {
	s := fmt.Sprintf("%s %s/%s/%s %s-%d %s", c.Op, c.App, c.Env, c.Slot, c.Service, c.Index, c.ReleaseID)
	if c.Err != "" {
		s += " error: " + c.Err
	}
	return s
}

// Running describes a live instance, for assertions.
type Running struct {
	gantry.Instance
	App, Env, Slot string
	// Vars are the variables the instance was started with.
	Vars map[string]string
}

type instance struct {
	spec    gantry.InstanceSpec
	inst    gantry.Instance
	knobs   Knobs
	srv     *http.Server
	state   string
	code    int
	timer   *time.Timer
	logs    []string
	stopped chan struct{}
}

// Driver is the in-memory driver. Its zero value is not usable: call New.
type Driver struct {
	// DriverName is what Name returns (default "process").
	DriverName string

	mu      sync.Mutex
	calls   []Call
	insts   map[string]*instance // by handle, live and ended
	byRel   map[string]Knobs
	bySvc   map[string]Knobs
	next    int
	started int
}

var _ gantry.Driver = (*Driver)(nil)

// New returns a driver named "process" with no instances.
func New() *Driver {
	return &Driver{DriverName: "process", insts: map[string]*instance{}, byRel: map[string]Knobs{}, bySvc: map[string]Knobs{}}
}

// Name returns DriverName.
func (d *Driver) Name() string { return d.DriverName }

// SetRelease sets the knobs of every instance of a release started from now on.
func (d *Driver) SetRelease(releaseID string, k Knobs) {
	d.mu.Lock()
	d.byRel[releaseID] = k
	d.mu.Unlock()
}

// SetService sets the knobs of every instance of a service started from now on.
func (d *Driver) SetService(service string, k Knobs) {
	d.mu.Lock()
	d.bySvc[service] = k
	d.mu.Unlock()
}

// Calls returns the calls recorded so far; with ops, only those.
func (d *Driver) Calls(ops ...string) []Call {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Call
	for _, c := range d.calls {
		if len(ops) == 0 || contains(ops, c.Op) {
			out = append(out, c)
		}
	}
	return out
}

// ResetCalls forgets the calls recorded so far.
func (d *Driver) ResetCalls() {
	d.mu.Lock()
	d.calls = nil
	d.mu.Unlock()
}

func (d *Driver) record(c Call) {
	d.mu.Lock()
	d.calls = append(d.calls, c)
	d.mu.Unlock()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Start runs an instance as an HTTP server on 127.0.0.1:spec.Port (a free
// port when 0). It answers the health path with 200 and any other path with
// "release <id> slot <slot> service <service>".
func (d *Driver) Start(ctx context.Context, spec gantry.InstanceSpec) (gantry.Instance, error) {
	c := Call{Op: "start", App: spec.App, Env: spec.Env, Slot: spec.Slot, Service: spec.Service, Index: spec.Index, ReleaseID: spec.ReleaseID}
	inst, err := d.start(spec)
	c.Addr, c.Handle = inst.Addr, inst.Handle
	if err != nil {
		c.Err = err.Error()
	}
	d.record(c)
	return inst, err
}

func (d *Driver) start(spec gantry.InstanceSpec) (gantry.Instance, error) {
	d.mu.Lock()
	k := d.byRel[spec.ReleaseID].or(d.bySvc[spec.Service])
	d.next++
	handle := "mem-" + strconv.Itoa(d.next)
	d.mu.Unlock()
	if k.FailStart {
		return gantry.Instance{}, gantry.Errorf(gantry.EFAILED, "%s-%d of release %s refused to start (memdriver knob)", spec.Service, spec.Index, spec.ReleaseID)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(spec.Port)))
	if err != nil {
		return gantry.Instance{}, fmt.Errorf("listen: %w", err)
	}
	vars := make(map[string]string, len(spec.Vars))
	for key, v := range spec.Vars {
		vars[key] = v
	}
	spec.Vars = vars
	in := &instance{spec: spec, knobs: k, state: gantry.InstanceRunning, stopped: make(chan struct{})}
	in.inst = gantry.Instance{Service: spec.Service, Index: spec.Index, Addr: ln.Addr().String(), Handle: handle, StartedAt: time.Now(), ReleaseID: spec.ReleaseID}
	in.logs = append(in.logs, fmt.Sprintf("%s-%d of release %s listening on %s", spec.Service, spec.Index, spec.ReleaseID, in.inst.Addr))
	in.srv = &http.Server{Handler: in.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		_ = in.srv.Serve(ln)
		close(in.stopped)
	}()
	d.mu.Lock()
	d.insts[handle] = in
	d.started++
	if k.ExitAfter > 0 {
		in.timer = time.AfterFunc(k.ExitAfter, func() { d.end(in, gantry.InstanceExited, 1) })
	}
	d.mu.Unlock()
	return in.inst, nil
}

func (in *instance) handler() http.Handler {
	health := in.spec.Health.Path
	body := fmt.Sprintf("release %s slot %s service %s\n", in.spec.ReleaseID, in.spec.Slot, in.spec.Service)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if health != "" && r.URL.Path == health {
			if in.knobs.NeverHealthy {
				http.Error(w, "not healthy (memdriver knob)", http.StatusServiceUnavailable)
				return
			}
			io.WriteString(w, "ok\n")
			return
		}
		if in.knobs.Answer500 {
			http.Error(w, "failing (memdriver knob)", http.StatusInternalServerError)
			return
		}
		io.WriteString(w, body)
	})
}

// end stops an instance's server and marks how it ended.
func (d *Driver) end(in *instance, state string, code int) {
	d.mu.Lock()
	if in.state != gantry.InstanceRunning {
		d.mu.Unlock()
		return
	}
	in.state, in.code = state, code
	if in.timer != nil {
		in.timer.Stop()
	}
	in.logs = append(in.logs, "ended: "+state)
	d.mu.Unlock()
	_ = in.srv.Close()
	<-in.stopped
}

// Kill makes a running instance exit, as a crash of it would.
func (d *Driver) Kill(handle string) {
	d.mu.Lock()
	in := d.insts[handle]
	d.mu.Unlock()
	if in != nil {
		d.end(in, gantry.InstanceExited, 137)
	}
}

// Stop stops an instance; one that is gone already is not an error.
func (d *Driver) Stop(ctx context.Context, inst gantry.Instance, stop gantry.StopSpec) error {
	d.mu.Lock()
	in := d.insts[inst.Handle]
	d.mu.Unlock()
	c := Call{Op: "stop", Service: inst.Service, Index: inst.Index, ReleaseID: inst.ReleaseID, Addr: inst.Addr, Handle: inst.Handle}
	if in != nil {
		c.App, c.Env, c.Slot = in.spec.App, in.spec.Env, in.spec.Slot
		d.end(in, gantry.InstanceGone, 0)
		d.mu.Lock()
		in.state = gantry.InstanceGone
		delete(d.insts, inst.Handle) // gone is what an unknown handle reports
		d.mu.Unlock()
	}
	d.record(c)
	return nil
}

// Attach succeeds for a running instance and returns ENOTFOUND otherwise.
func (d *Driver) Attach(ctx context.Context, inst gantry.Instance) error {
	st := d.state(inst.Handle)
	c := Call{Op: "attach", Service: inst.Service, Index: inst.Index, ReleaseID: inst.ReleaseID, Addr: inst.Addr, Handle: inst.Handle}
	var err error
	if st.State != gantry.InstanceRunning {
		err = gantry.Errorf(gantry.ENOTFOUND, "instance %s is %s", inst.Handle, st.State)
		c.Err = err.Error()
	}
	d.record(c)
	return err
}

// Inspect reports running, exited (with its code) or gone.
func (d *Driver) Inspect(ctx context.Context, inst gantry.Instance) (gantry.InstanceState, error) {
	d.record(Call{Op: "inspect", Service: inst.Service, Index: inst.Index, ReleaseID: inst.ReleaseID, Addr: inst.Addr, Handle: inst.Handle})
	return d.state(inst.Handle), nil
}

func (d *Driver) state(handle string) gantry.InstanceState {
	d.mu.Lock()
	defer d.mu.Unlock()
	in := d.insts[handle]
	if in == nil {
		return gantry.InstanceState{State: gantry.InstanceGone}
	}
	return gantry.InstanceState{State: in.state, ExitCode: in.code}
}

// Logs writes the instance's few log lines (the last tail when tail > 0)
// and, when follow, returns only once ctx ends: nothing more is ever
// written by an in-memory instance.
func (d *Driver) Logs(ctx context.Context, inst gantry.Instance, tail int, follow bool, w io.Writer) error {
	d.record(Call{Op: "logs", Service: inst.Service, Index: inst.Index, ReleaseID: inst.ReleaseID, Handle: inst.Handle})
	d.mu.Lock()
	in := d.insts[inst.Handle]
	var lines []string
	if in != nil {
		lines = append(lines, in.logs...)
	}
	d.mu.Unlock()
	if in == nil {
		return gantry.Errorf(gantry.ENOTFOUND, "instance %s is unknown", inst.Handle)
	}
	if tail > 0 && len(lines) > tail {
		lines = lines[len(lines)-tail:]
	}
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	if follow {
		<-ctx.Done()
	}
	return nil
}

// Running returns the running instances, sorted by address.
func (d *Driver) Running() []Running {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Running
	for _, in := range d.insts {
		if in.state == gantry.InstanceRunning {
			out = append(out, Running{Instance: in.inst, App: in.spec.App, Env: in.spec.Env, Slot: in.spec.Slot, Vars: in.spec.Vars})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr < out[j].Addr })
	return out
}

// RunningIn returns the running instances of one environment.
func (d *Driver) RunningIn(app, env string) []Running {
	var out []Running
	for _, r := range d.Running() {
		if r.App == app && r.Env == env {
			out = append(out, r)
		}
	}
	return out
}

// Started counts the instances started since New.
func (d *Driver) Started() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.started
}

// Close stops every running instance.
func (d *Driver) Close() {
	for _, r := range d.Running() {
		_ = d.Stop(context.Background(), r.Instance, gantry.StopSpec{})
	}
}

var _ gantry.PortReserver = (*Driver)(nil)

// ReservePort returns a port that was free a moment ago, as the real
// drivers' allocator does (without its guarantee that no one else takes it
// meanwhile, which a test on loopback does not need).
func (d *Driver) ReservePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
