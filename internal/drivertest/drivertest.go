// Package drivertest is the test suite that every gantry.Driver must pass:
// the process driver today, Docker and Kubernetes drivers later. A driver's
// tests call Run with a Harness that knows how to make an instance of the
// suite's program (package testapp) runnable on that driver.
//
// A driver's test builds the program once, makes it available the way the
// driver runs things (a tarball for the process driver, an image for Docker),
// and runs the suite:
//
//	func TestMain(m *testing.M) {
//		bin, err := drivertest.BuildTestApp(tmp) // tmp/bin/testapp
//		… store it as an artifact …
//		os.Exit(m.Run())
//	}
//
//	func TestDriverSuite(t *testing.T) {
//		drivertest.Run(t, drivertest.Harness{Driver: d, Spec: …, Restart: …})
//	}
//
// Subtests run in parallel, each on a port of its own and a service name of
// its own, and stop what they started even when they fail.
//
// It is imported by tests only and must never be imported by code that goes
// into the gantry binary. It tests the contract of gantry.Driver, nothing
// that only one driver does.
package drivertest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// Harness gives the suite what differs per driver.
type Harness struct {
	Driver gantry.Driver
	// Spec returns a spec for an instance of the suite's program (package
	// testapp) that serves HTTP on port: /up answers 200, / answers with its
	// GANTRY_RELEASE and GANTRY_SLOT, and SIGTERM stops it after in-flight
	// requests. The suite adds its own Vars (TESTAPP_IGNORE_SIGTERM, …).
	Spec func(t *testing.T, slot, service string, index, port int) gantry.InstanceSpec
	// Restart simulates a restart of the server: it returns a new driver
	// value over the same state, which must Attach to running instances.
	Restart func(t *testing.T) gantry.Driver
	// NoTraffic says the driver's instances cannot be reached from the
	// test (a Kubernetes cluster whose pods are faked by kwok: they are
	// Running and Ready, but no process serves). Cases that need requests,
	// output or exit codes skip; the others check what the driver reports
	// instead of asking the program.
	NoTraffic bool
}

// Deadlines of the suite: generous, because the machine may be busy; a
// passing driver meets them with a wide margin.
const (
	upTimeout   = 30 * time.Second
	waitTimeout = 15 * time.Second
	pollEvery   = 25 * time.Millisecond
)

// Run runs the suite against h's driver. Every subtest stops what it started,
// even when it fails.
func Run(t *testing.T, h Harness) {
	if h.Driver == nil || h.Spec == nil || h.Restart == nil {
		t.Fatal("drivertest: Harness needs Driver, Spec and Restart")
	}
	s := &suite{h: h}
	tests := []struct {
		name string
		f    func(*testing.T, *suite)
		// needsTraffic cases cannot run at all under Harness.NoTraffic.
		needsTraffic bool
	}{
		{"StartServesHTTP", testStartServesHTTP, false},
		{"Environment", testEnvironment, true},
		{"DriverPicksPort", testDriverPicksPort, true},
		{"ManyInstances", testManyInstances, true},
		{"StopLetsInflightFinish", testStopLetsInflightFinish, true},
		{"StopKillsAfterTimeout", testStopKillsAfterTimeout, true},
		{"StopSignal", testStopSignal, false},
		{"AttachAfterRestart", testAttachAfterRestart, false},
		{"InspectExited", testInspectExited, true},
		{"Logs", testLogs, true},
		{"GoneInstance", testGoneInstance, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needsTraffic && h.NoTraffic {
				t.Skip("Harness.NoTraffic: this case needs requests to the instance")
			}
			t.Parallel()
			tt.f(t, s)
		})
	}
}

// waitUp waits until the instance serves, or, without traffic, until the
// driver reports it running.
func (s *suite) waitUp(t *testing.T, inst gantry.Instance) {
	t.Helper()
	if !s.h.NoTraffic {
		WaitUp(t, inst)
		return
	}
	var st gantry.InstanceState
	if !WaitFor(upTimeout, func() bool {
		var err error
		st, err = s.h.Driver.Inspect(context.Background(), inst)
		return err == nil && st.State == gantry.InstanceRunning
	}) {
		t.Fatalf("instance %s-%d: state %q (%s), want %q within %s", inst.Service, inst.Index, st.State, st.Detail, gantry.InstanceRunning, upTimeout)
	}
}

// waitDown is WaitDown, or nothing without traffic: the state checks that
// follow it in every case cover the driver's side.
func (s *suite) waitDown(t *testing.T, inst gantry.Instance) {
	t.Helper()
	if !s.h.NoTraffic {
		WaitDown(t, inst)
	}
}

// id is the instance's process identity, or "" without traffic.
func (s *suite) id(t *testing.T, inst gantry.Instance) string {
	t.Helper()
	if s.h.NoTraffic {
		return ""
	}
	return MustGet(t, inst, "/id")
}

type suite struct{ h Harness }

// start starts an instance of the test program for service (slot "blue"),
// lets edit adjust the spec, and stops the instance when the test ends.
func (s *suite) start(t *testing.T, service string, index int, edit func(*gantry.InstanceSpec)) (gantry.InstanceSpec, gantry.Instance) {
	t.Helper()
	spec := s.h.Spec(t, "blue", service, index, FreePort(t))
	if spec.Vars == nil {
		spec.Vars = map[string]string{}
	}
	if edit != nil {
		edit(&spec)
	}
	inst, err := s.h.Driver.Start(context.Background(), spec)
	if err != nil {
		t.Fatalf("Start(%s-%d): %v", service, index, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := s.h.Driver.Stop(ctx, inst, gantry.StopSpec{Signal: "SIGTERM", Timeout: time.Second}); err != nil {
			t.Errorf("cleanup: Stop(%s-%d): %v", service, index, err)
		}
	})
	return spec, inst
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

var client = &http.Client{Timeout: 20 * time.Second}

// Get fetches path from the instance and returns the status and body.
func Get(inst gantry.Instance, path string) (int, string, error) {
	resp, err := client.Get("http://" + inst.Addr + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// MustGet fetches path and fails the test unless it answers 200.
func MustGet(t testing.TB, inst gantry.Instance, path string) string {
	t.Helper()
	code, body, err := Get(inst, path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if code != http.StatusOK {
		t.Fatalf("GET %s: status %d, want 200 (body %q)", path, code, body)
	}
	return body
}

// WaitUp waits until the instance answers /up with 200.
func WaitUp(t testing.TB, inst gantry.Instance) {
	t.Helper()
	var last string
	if !WaitFor(upTimeout, func() bool {
		code, body, err := Get(inst, "/up")
		last = fmt.Sprintf("status %d, body %q, error %v", code, body, err)
		return err == nil && code == http.StatusOK
	}) {
		t.Fatalf("instance %s-%d at %s did not answer /up within %s; last: %s", inst.Service, inst.Index, inst.Addr, upTimeout, last)
	}
}

// WaitDown waits until the instance's address refuses connections.
func WaitDown(t testing.TB, inst gantry.Instance) {
	t.Helper()
	if !WaitFor(waitTimeout, func() bool {
		_, _, err := Get(inst, "/up")
		return err != nil
	}) {
		t.Fatalf("instance %s-%d at %s still answers after Stop", inst.Service, inst.Index, inst.Addr)
	}
}

// WaitFor polls cond until it holds or timeout passes.
func WaitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(pollEvery)
	}
}

// mustState fails the test unless Inspect reports want.
func mustState(t *testing.T, d gantry.Driver, inst gantry.Instance, want ...string) gantry.InstanceState {
	t.Helper()
	st, err := d.Inspect(context.Background(), inst)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	for _, w := range want {
		if st.State == w {
			return st
		}
	}
	t.Fatalf("Inspect: state %q (%s), want one of %q", st.State, st.Detail, want)
	return st
}

// logs returns the instance's log output, without following.
func logs(t *testing.T, d gantry.Driver, inst gantry.Instance, tail int) string {
	t.Helper()
	var buf bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := d.Logs(ctx, inst, tail, false, &buf); err != nil {
		t.Fatalf("Logs(tail %d): %v", tail, err)
	}
	return buf.String()
}

// waitLogs waits until the instance's log holds want.
func waitLogs(t *testing.T, d gantry.Driver, inst gantry.Instance, want string) {
	t.Helper()
	var got string
	if !WaitFor(waitTimeout, func() bool {
		got = logs(t, d, inst, 0)
		return strings.Contains(got, want)
	}) {
		t.Fatalf("logs of %s-%d: want a line %q, got:\n%s", inst.Service, inst.Index, want, got)
	}
}

// SyncBuffer is a bytes.Buffer that a following Logs may write to while the
// test reads it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
