package memdriver

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func spec(rel, svc string) gantry.InstanceSpec {
	return gantry.InstanceSpec{App: "shop", Env: "test", Slot: "blue", Service: svc, Index: 1, ReleaseID: rel, Health: gantry.HealthCheck{Path: "/up"}}
}

func TestStartServesAndStops(t *testing.T) {
	ctx := context.Background()
	d := New()
	defer d.Close()
	inst, err := d.Start(ctx, spec("r1", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, "http://"+inst.Addr+"/up"); code != 200 {
		t.Errorf("health: got %d, want 200", code)
	}
	if _, body := get(t, "http://"+inst.Addr+"/"); !strings.Contains(body, "release r1 slot blue") {
		t.Errorf("body: got %q, want it to name release r1 and slot blue", body)
	}
	if st, _ := d.Inspect(ctx, inst); st.State != gantry.InstanceRunning {
		t.Errorf("state: got %s, want running", st.State)
	}
	if err := d.Attach(ctx, inst); err != nil {
		t.Errorf("attach: %v", err)
	}
	if err := d.Stop(ctx, inst, gantry.StopSpec{}); err != nil {
		t.Fatal(err)
	}
	if err := d.Stop(ctx, inst, gantry.StopSpec{}); err != nil {
		t.Errorf("second stop: got %v, want nil", err)
	}
	if err := d.Attach(ctx, inst); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("attach after stop: got %v, want ENOTFOUND", err)
	}
	if code, _ := get(t, "http://"+inst.Addr+"/up"); code != 0 {
		t.Errorf("after stop: got status %d, want no answer", code)
	}
	var ops []string
	for _, c := range d.Calls() {
		ops = append(ops, c.Op)
	}
	if got, want := strings.Join(ops, ","), "start,inspect,attach,stop,stop,attach"; got != want {
		t.Errorf("calls: got %s, want %s", got, want)
	}
}

func TestKnobs(t *testing.T) {
	ctx := context.Background()
	d := New()
	defer d.Close()
	d.SetRelease("bad", Knobs{FailStart: true})
	if _, err := d.Start(ctx, spec("bad", "web")); err == nil {
		t.Error("FailStart: got nil error")
	}
	d.SetRelease("sick", Knobs{NeverHealthy: true, Answer500: true})
	inst, err := d.Start(ctx, spec("sick", "web"))
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(t, "http://"+inst.Addr+"/up"); code != 503 {
		t.Errorf("NeverHealthy: got %d, want 503", code)
	}
	if code, _ := get(t, "http://"+inst.Addr+"/"); code != 500 {
		t.Errorf("Answer500: got %d, want 500", code)
	}
	d.SetService("worker", Knobs{ExitAfter: time.Millisecond})
	w, err := d.Start(ctx, spec("r1", "worker"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		st, _ := d.Inspect(ctx, w)
		if st.State == gantry.InstanceExited && st.ExitCode == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ExitAfter: state %+v, want exited with code 1", st)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestSlots(t *testing.T) {
	ctx := context.Background()
	s := NewSlots()
	defer s.Close()
	ref := gantry.SlotRef{App: "shop", Env: "prod", Slot: "blue"}
	sp := gantry.SlotSpec{SlotRef: ref, ReleaseID: "r1", Services: []gantry.SlotServiceSpec{{Spec: spec("r1", "web"), Instances: 2, HTTP: true}}}
	insts, err := s.StartSlot(ctx, sp)
	if err != nil || len(insts) != 2 {
		t.Fatalf("StartSlot: got %d instances, %v; want 2", len(insts), err)
	}
	if err := s.Switch(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if a, _ := s.ActiveSlot(ctx, gantry.SlotRef{App: "shop", Env: "prod"}); a != "blue" {
		t.Errorf("active: got %q, want blue", a)
	}
	if err := s.StopSlot(ctx, ref, false); gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Errorf("stop active: got %v, want ECONFLICT", err)
	}
	green := gantry.SlotRef{App: "shop", Env: "prod", Slot: "green"}
	sp.SlotRef, sp.ReleaseID = green, "r2"
	if _, err := s.StartSlot(ctx, sp); err != nil {
		t.Fatal(err)
	}
	if err := s.Switch(ctx, green); err != nil {
		t.Fatal(err)
	}
	if err := s.StopSlot(ctx, ref, false); err != nil {
		t.Fatal(err)
	}
	if n := len(s.SlotInstances("shop", "prod", "blue")); n != 0 {
		t.Errorf("blue after StopSlot: %d instances, want 0", n)
	}
	// A switch back scales the stopped slot up again.
	if err := s.Switch(ctx, ref); err != nil {
		t.Fatal(err)
	}
	if n := len(s.SlotInstances("shop", "prod", "blue")); n != 2 {
		t.Errorf("blue after switch back: %d instances, want 2", n)
	}
}
