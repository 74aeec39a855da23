package drivertest

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func testStartServesHTTP(t *testing.T, s *suite) {
	spec, inst := s.start(t, "web", 0, nil)
	if inst.Service != spec.Service || inst.Index != spec.Index {
		t.Errorf("Instance is %s-%d, want %s-%d", inst.Service, inst.Index, spec.Service, spec.Index)
	}
	if inst.Handle == "" {
		t.Error("Instance.Handle is empty: the orchestrator could not re-attach")
	}
	if inst.StartedAt.IsZero() {
		t.Error("Instance.StartedAt is zero")
	}
	if inst.Addr == "" {
		t.Fatal("Instance.Addr is empty for a spec with a port")
	}
	s.waitUp(t, inst)
	if !s.h.NoTraffic {
		want := fmt.Sprintf("release=%s slot=%s\n", spec.ReleaseID, spec.Slot)
		if got := MustGet(t, inst, "/"); got != want {
			t.Errorf("GET /: got %q, want %q", got, want)
		}
	}
	mustState(t, s.h.Driver, inst, gantry.InstanceRunning)

	// Attaching to an instance that runs starts nothing new.
	id := s.id(t, inst)
	if err := s.h.Driver.Attach(context.Background(), inst); err != nil {
		t.Fatalf("Attach to a running instance: %v", err)
	}
	if got := s.id(t, inst); got != id {
		t.Errorf("after Attach the instance is another process: id %q, want %q", got, id)
	}
}

func testEnvironment(t *testing.T, s *suite) {
	secret := "s3cret-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	spec, inst := s.start(t, "envcheck", 2, func(spec *gantry.InstanceSpec) {
		spec.Vars["DRIVERTEST_VAR"] = "hello world"
		spec.Vars["DRIVERTEST_SECRET"] = secret
	})
	WaitUp(t, inst)
	for _, tt := range []struct{ name, want string }{
		{"DRIVERTEST_VAR", "hello world"},
		{"DRIVERTEST_SECRET", secret},
		{"PORT", strconv.Itoa(spec.Port)},
		{"GANTRY_APP", spec.App},
		{"GANTRY_ENV", spec.Env},
		{"GANTRY_SLOT", spec.Slot},
		{"GANTRY_SERVICE", spec.Service},
		{"GANTRY_INSTANCE", "2"},
		{"GANTRY_RELEASE", spec.ReleaseID},
	} {
		if got := MustGet(t, inst, "/env?name="+tt.name); got != tt.want {
			t.Errorf("instance sees %s=%q, want %q", tt.name, got, tt.want)
		}
	}
	// The listen address: a host every driver names, and with the port.
	host := MustGet(t, inst, "/env?name=HOST")
	if host != gantry.ListenLoopback && host != gantry.ListenAll {
		t.Errorf("instance sees HOST=%q, want %s or %s", host, gantry.ListenLoopback, gantry.ListenAll)
	}
	if got, want := MustGet(t, inst, "/env?name=GANTRY_LISTEN"), net.JoinHostPort(host, strconv.Itoa(spec.Port)); got != want {
		t.Errorf("instance sees GANTRY_LISTEN=%q, want %q", got, want)
	}
	if strings.Contains(inst.Handle, secret) {
		t.Errorf("the handle holds a secret value: %s", inst.Handle)
	}
}

// testDriverPicksPort: a spec without a port gets one from the driver,
// which the instance sees as $PORT and the orchestrator as Instance.Addr.
func testDriverPicksPort(t *testing.T, s *suite) {
	_, inst := s.start(t, "envcheck", 3, func(spec *gantry.InstanceSpec) { spec.Port = 0 })
	_, port, err := net.SplitHostPort(inst.Addr)
	if err != nil || port == "0" {
		t.Fatalf("Instance.Addr %q of a spec without a port: want 127.0.0.1:<port picked by the driver>", inst.Addr)
	}
	WaitUp(t, inst)
	if got := MustGet(t, inst, "/env?name=PORT"); got != port {
		t.Errorf("instance sees PORT=%q, want the port of its address %s", got, port)
	}
}

func testManyInstances(t *testing.T, s *suite) {
	const n = 3
	insts := make([]gantry.Instance, n)
	var wg sync.WaitGroup
	for i := range n {
		// Started together, so a driver that unpacks or pulls a release
		// once is checked under concurrency.
		wg.Go(func() {
			_, insts[i] = s.start(t, "many", i, nil)
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	ids := map[string]int{}
	for i, inst := range insts {
		WaitUp(t, inst)
		id := MustGet(t, inst, "/id")
		if j, ok := ids[id]; ok {
			t.Errorf("instances %d and %d are the same process (%s)", j, i, id)
		}
		ids[id] = i
		if got := MustGet(t, inst, "/env?name=GANTRY_INSTANCE"); got != strconv.Itoa(i) {
			t.Errorf("instance %d sees GANTRY_INSTANCE=%q", i, got)
		}
	}
}

func testStopLetsInflightFinish(t *testing.T, s *suite) {
	_, inst := s.start(t, "graceful", 0, nil)
	WaitUp(t, inst)
	// The headers come at once and the body after the delay: once Get
	// returns, the request is in flight.
	resp, err := client.Get("http://" + inst.Addr + "/slow?d=1500ms")
	if err != nil {
		t.Fatalf("GET /slow: %v", err)
	}
	defer resp.Body.Close()
	const timeout = 20 * time.Second
	stopped := make(chan error, 1)
	begin := time.Now()
	go func() {
		stopped <- s.h.Driver.Stop(context.Background(), inst, gantry.StopSpec{Signal: "SIGTERM", Timeout: timeout})
	}()
	body, err := io.ReadAll(resp.Body)
	if err != nil || string(body) != "slow done" {
		t.Errorf("in-flight request during Stop: body %q, error %v; want %q, nil", body, err, "slow done")
	}
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
		// SIGTERM ends the program once its request is done, long before
		// the timeout; a driver that sends no signal waits it out.
		if took := time.Since(begin); took > timeout*3/4 {
			t.Errorf("Stop took %s, want much less than its %s timeout", took, timeout)
		}
	case <-time.After(timeout + waitTimeout):
		t.Fatal("Stop did not return")
	}
	mustState(t, s.h.Driver, inst, gantry.InstanceExited, gantry.InstanceGone)
	WaitDown(t, inst)
}

func testStopKillsAfterTimeout(t *testing.T, s *suite) {
	_, inst := s.start(t, "stubborn", 0, func(spec *gantry.InstanceSpec) {
		spec.Vars["TESTAPP_IGNORE_SIGTERM"] = "1"
	})
	WaitUp(t, inst)
	const timeout = 300 * time.Millisecond
	stopped := make(chan error, 1)
	begin := time.Now()
	go func() {
		stopped <- s.h.Driver.Stop(context.Background(), inst, gantry.StopSpec{Signal: "SIGTERM", Timeout: timeout})
	}()
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Stop: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatalf("Stop of an instance that ignores SIGTERM did not return within %s (timeout %s)", waitTimeout, timeout)
	}
	if took := time.Since(begin); took < timeout {
		t.Errorf("Stop returned after %s, before the %s timeout: it did not give SIGTERM a chance", took, timeout)
	}
	mustState(t, s.h.Driver, inst, gantry.InstanceExited, gantry.InstanceGone)
	WaitDown(t, inst)
	// Whether SIGTERM came first is checked by StopSignal: here the log line
	// saying so may not be written within the short timeout on a busy machine.
}

func testStopSignal(t *testing.T, s *suite) {
	_, inst := s.start(t, "sigint", 0, nil)
	s.waitUp(t, inst)
	err := s.h.Driver.Stop(context.Background(), inst, gantry.StopSpec{Signal: "SIGBOGUS", Timeout: time.Second})
	if code := gantry.ErrorCode(err); code != gantry.EINVALID {
		t.Errorf("Stop with signal SIGBOGUS: error %v (code %q), want code %q", err, code, gantry.EINVALID)
	}
	mustState(t, s.h.Driver, inst, gantry.InstanceRunning)
	if err := s.h.Driver.Stop(context.Background(), inst, gantry.StopSpec{Signal: "SIGINT", Timeout: 10 * time.Second}); err != nil {
		t.Fatalf("Stop with SIGINT: %v", err)
	}
	if !s.h.NoTraffic {
		waitLogs(t, s.h.Driver, inst, "testapp: interrupt, finishing in-flight requests")
	}
	mustState(t, s.h.Driver, inst, gantry.InstanceExited, gantry.InstanceGone)
}

func testAttachAfterRestart(t *testing.T, s *suite) {
	_, inst := s.start(t, "survivor", 0, nil)
	s.waitUp(t, inst)
	id := s.id(t, inst)

	d2 := s.h.Restart(t)
	if err := d2.Attach(context.Background(), inst); err != nil {
		t.Fatalf("Attach after restart: %v", err)
	}
	mustState(t, d2, inst, gantry.InstanceRunning)
	if got := s.id(t, inst); got != id {
		t.Fatalf("after Attach another process answers: id %q, want %q", got, id)
	}
	if err := d2.Stop(context.Background(), inst, gantry.StopSpec{Signal: "SIGTERM", Timeout: 10 * time.Second}); err != nil {
		t.Fatalf("Stop through the restarted driver: %v", err)
	}
	s.waitDown(t, inst)
	mustState(t, d2, inst, gantry.InstanceExited, gantry.InstanceGone)
	if err := d2.Attach(context.Background(), inst); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Attach after Stop: error %v, want code %q", err, gantry.ENOTFOUND)
	}
	if err := s.h.Driver.Attach(context.Background(), inst); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Attach by the first driver after Stop: error %v, want code %q", err, gantry.ENOTFOUND)
	}
}

func testInspectExited(t *testing.T, s *suite) {
	_, inst := s.start(t, "quitter", 0, nil)
	WaitUp(t, inst)
	Get(inst, "/exit?code=3") // the process may close the connection first
	var st gantry.InstanceState
	if !WaitFor(waitTimeout, func() bool {
		var err error
		st, err = s.h.Driver.Inspect(context.Background(), inst)
		return err == nil && st.State != gantry.InstanceRunning
	}) {
		t.Fatalf("Inspect after the instance exited: state %q, want %q", st.State, gantry.InstanceExited)
	}
	if st.State != gantry.InstanceExited || st.ExitCode != 3 {
		t.Errorf("Inspect: got %+v, want state %q with exit code 3", st, gantry.InstanceExited)
	}
	if err := s.h.Driver.Attach(context.Background(), inst); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Attach to an exited instance: error %v, want code %q", err, gantry.ENOTFOUND)
	}
}

func testLogs(t *testing.T, s *suite) {
	_, inst := s.start(t, "chatty", 0, nil)
	WaitUp(t, inst)
	MustGet(t, inst, "/log?line=alpha")
	MustGet(t, inst, "/log?line=beta")
	waitLogs(t, s.h.Driver, inst, "alpha\nbeta\n")
	if got := logs(t, s.h.Driver, inst, 0); !strings.Contains(got, "listening on") {
		t.Errorf("Logs(tail 0) lacks the start-up line:\n%s", got)
	}
	for _, tt := range []struct {
		tail int
		want string
	}{
		{1, "beta\n"},
		{2, "alpha\nbeta\n"},
	} {
		if got := logs(t, s.h.Driver, inst, tt.tail); got != tt.want {
			t.Errorf("Logs(tail %d): got %q, want %q", tt.tail, got, tt.want)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var buf SyncBuffer
	done := make(chan error, 1)
	go func() { done <- s.h.Driver.Logs(ctx, inst, 1, true, &buf) }()
	if !WaitFor(waitTimeout, func() bool { return buf.String() == "beta\n" }) {
		t.Fatalf("Logs(tail 1, follow) first wrote %q, want %q", buf.String(), "beta\n")
	}
	MustGet(t, inst, "/log?line=gamma")
	MustGet(t, inst, "/log?line=delta")
	if !WaitFor(waitTimeout, func() bool { return buf.String() == "beta\ngamma\ndelta\n" }) {
		t.Fatalf("Logs(follow): got %q, want %q", buf.String(), "beta\ngamma\ndelta\n")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil && err != context.Canceled {
			t.Errorf("Logs(follow) after cancel: %v, want nil", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Logs(follow) did not return after its context ended")
	}
}

func testGoneInstance(t *testing.T, s *suite) {
	_, inst := s.start(t, "gone", 0, nil)
	s.waitUp(t, inst)
	stop := gantry.StopSpec{Signal: "SIGTERM", Timeout: 10 * time.Second}
	if err := s.h.Driver.Stop(context.Background(), inst, stop); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := s.h.Driver.Stop(context.Background(), inst, stop); err != nil {
		t.Errorf("second Stop of a gone instance: %v, want nil", err)
	}
	if err := s.h.Driver.Attach(context.Background(), inst); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Attach to a gone instance: error %v, want code %q", err, gantry.ENOTFOUND)
	}
	if s.h.NoTraffic {
		mustState(t, s.h.Driver, inst, gantry.InstanceExited, gantry.InstanceGone)
	} else if code, _, err := Get(inst, "/up"); err == nil {
		t.Errorf("a stopped instance still answers /up with %d", code)
	}
}
