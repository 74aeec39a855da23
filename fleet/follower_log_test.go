package fleet_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/proxy"
)

// refusingSource stands in for a control plane that refuses this router's
// token (a fake: the refusal itself is the API's, tested in api/).
type refusingSource struct{}

var errRefused = gantry.Errorf(gantry.EFORBIDDEN, "token edge (viewer) lacks deploy")

func (refusingSource) WatchRoutes(ctx context.Context, _ int64) (*gantry.RouteTable, error) {
	return nil, errRefused
}
func (refusingSource) ReportRouter(context.Context, *gantry.RouterReport) error { return errRefused }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestFollowerSaysItIsRefused: a router that never reaches the control
// plane, or whose reports are refused, logs it once at warn level (it
// used to log nothing: a first failure was no change from "down", and a
// refused report was a debug line).
func TestFollowerSaysItIsRefused(t *testing.T) {
	var logs syncBuffer
	r := proxy.New(proxy.Config{})
	defer r.Close()
	f := &fleet.Follower{Name: "edge", Source: refusingSource{}, Local: r, Heartbeat: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "report to the control plane failed") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // several more heartbeats and watches
	cancel()
	<-done
	out := logs.String()
	for _, want := range []string{"control plane not reached", "report to the control plane failed"} {
		if n := strings.Count(out, want); n != 1 {
			t.Errorf("%q logged %d times, want once:\n%s", want, n, out)
		}
	}
	if !strings.Contains(out, "lacks deploy") || !strings.Contains(out, "--follow-token-file") {
		t.Errorf("the refusal, and what the router does about it, are not in the log:\n%s", out)
	}
}
