package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"sync"

	"github.com/gantry-dev/gantry/build"
	"github.com/gantry-dev/gantry/deploy"
)

// openLeader starts a server on a store that other servers may share
// (PostgreSQL): it serves the API at once, and runs deployments, recovery
// and the background work (Server.background) only while it holds the lease. When it takes
// the lease at start Open returns after its recovery, as on SQLite.
func (s *Server) openLeader(ctx context.Context, releases *deploy.Releases, builder *build.Builder) error {
	s.Leader = &deploy.Leader{Store: s.State, Holder: leaseHolder(), TTL: s.LeaseTTL, Logger: s.Logger.With("component", "lease")}
	s.Orchestrator.Leader = s.Leader
	if err := s.serveAPI(releases, builder); err != nil {
		return err
	}
	s.Leader.Addr = s.Advertise
	if s.Leader.Addr == "" {
		s.Leader.Addr = s.APIURL
	}
	var once sync.Once
	recovered := make(chan struct{})
	s.Leader.OnLead = func(lctx context.Context) {
		// lctx carries the fencing token: recovery's writes and router
		// changes are refused if another server has taken over since.
		if err := s.Orchestrator.Recover(lctx); err != nil && lctx.Err() == nil {
			s.Logger.Error("recovery incomplete", "error", err)
		}
		once.Do(func() { close(recovered) })
		s.background(lctx)
	}
	wctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	s.Leader.Try(ctx)
	if s.Leader.Leading() {
		select {
		case <-recovered:
		case <-ctx.Done():
		}
	} else if cur := s.Leader.Current(); cur != nil {
		s.Logger.Info("following: another server leads", "leader", cur.Holder, "at", cur.Addr, "epoch", cur.Epoch)
	}
	go func() {
		defer close(s.done)
		s.Leader.Run(wctx)
	}()
	return nil
}

// leaseHolder names this server process in the lease: host, process and a
// random part, so a restarted server is a new holder (with a new epoch).
func leaseHolder() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s/%d/%s", host, os.Getpid(), hex.EncodeToString(b))
}
