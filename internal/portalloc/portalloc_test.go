package portalloc

import (
	"net"
	"strconv"
	"testing"
	"time"
)

func TestTakeSkipsHandedOutAndBusyPorts(t *testing.T) {
	now := time.Unix(0, 0)
	busy := map[int]bool{20002: true}
	a := &Allocator{Low: 20000, High: 20003, Hold: time.Minute, Now: func() time.Time { return now },
		Free: func(p int) bool { return !busy[p] }}
	got := map[int]bool{}
	for range 3 {
		p, err := a.Take()
		if err != nil {
			t.Fatal(err)
		}
		if got[p] || busy[p] {
			t.Fatalf("Take handed out %d again or a busy port (so far %v)", p, got)
		}
		got[p] = true
	}
	if p, err := a.Take(); err == nil {
		t.Fatalf("Take with every port held or busy: got %d, want an error", p)
	}
	a.Release(20000)
	if p, err := a.Take(); err != nil || p != 20000 {
		t.Fatalf("Take after Release(20000): got %d, %v; want 20000", p, err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := a.Take(); err != nil {
		t.Fatalf("Take once the hold has passed: %v", err)
	}
}

func TestTakeRealPortIsBindableAndBelowEphemeral(t *testing.T) {
	var a Allocator
	p, err := a.Take()
	if err != nil {
		t.Fatal(err)
	}
	if eph := ephemeralLow(); eph > 0 && p >= eph {
		t.Errorf("port %d is inside the ephemeral range starting at %d", p, eph)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("the port handed out cannot be bound: %v", err)
	}
	ln.Close()
}
