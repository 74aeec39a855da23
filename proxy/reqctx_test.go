package proxy

import (
	"context"
	"runtime"
	"testing"
	"time"
)

// TestReqCtx: the loop's request context behaves as context.WithCancel's
// does: Done closes and Err says Canceled once cancelled (a Done asked for
// after the cancel is closed too); AfterFunc runs once cancelled, unless
// stopped; contexts derived from it (through the router's requestState
// too) are cancelled with it, without a goroutine each to wait on it;
// values come from the connection's context.
func TestReqCtx(t *testing.T) {
	type key struct{}
	base := context.WithValue(context.Background(), key{}, "conn")
	x := newReqCtx(base)
	if x.Value(key{}) != "conn" || x.Err() != nil {
		t.Fatalf("fresh: value %v, err %v", x.Value(key{}), x.Err())
	}
	rs := &requestState{Context: x}
	goroutines := runtime.NumGoroutine()
	var derived []context.Context
	var cancels []context.CancelFunc
	for range 100 {
		d, cancel := context.WithCancel(rs)
		derived, cancels = append(derived, d), append(cancels, cancel)
	}
	if n := runtime.NumGoroutine(); n > goroutines {
		t.Errorf("100 contexts derived from a request's: %d goroutines more, want none", n-goroutines)
	}
	ran := make(chan string, 2)
	context.AfterFunc(rs, func() { ran <- "kept" })
	stop := context.AfterFunc(x, func() { ran <- "stopped" })
	if !stop() {
		t.Error("stop of a pending AfterFunc said false")
	}
	done := x.Done()
	select {
	case <-done:
		t.Fatal("Done closed before cancel")
	default:
	}
	x.cancel()
	x.cancel() // again: nothing
	for _, ch := range []<-chan struct{}{done, x.Done(), rs.Done()} {
		select {
		case <-ch:
		case <-time.After(5 * time.Second):
			t.Fatal("Done not closed after cancel")
		}
	}
	if x.Err() != context.Canceled || rs.Err() != context.Canceled {
		t.Errorf("Err after cancel: %v, %v", x.Err(), rs.Err())
	}
	for i, d := range derived {
		select {
		case <-d.Done():
		case <-time.After(5 * time.Second):
			t.Fatalf("derived context %d not cancelled with the request's", i)
		}
		cancels[i]()
	}
	select {
	case got := <-ran:
		if got != "kept" {
			t.Errorf("AfterFunc %q ran, want the one not stopped", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("AfterFunc did not run after cancel")
	}
	select {
	case got := <-ran:
		t.Errorf("AfterFunc %q ran too", got)
	case <-time.After(50 * time.Millisecond):
	}
	// Cancelled before Done is asked for: a closed channel; AfterFunc on it
	// runs at once.
	y := newReqCtx(base)
	y.cancel()
	select {
	case <-y.Done():
	default:
		t.Error("Done of a cancelled context is open")
	}
	context.AfterFunc(y, func() { ran <- "late" })
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		t.Error("AfterFunc on a cancelled context did not run")
	}
	if ownCtx(rs) != x || ownCtx(x) != x || ownCtx(derived[0]) != nil {
		t.Error("ownCtx: want the reqCtx for itself and its requestState, nil for a derived context")
	}
}
