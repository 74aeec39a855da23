package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"

	"github.com/gantry-dev/gantry/internal/listenfd"
)

// takeover hands this process's sockets to a fresh copy of the binary and,
// once that copy serves, drains and returns nil (the process then exits).
// On error this process still serves everything.
//
// The admin API stops first, so that no route changes between the state
// the new process reads and the one this process leaves: admin connections
// queue on the socket meanwhile, and the new process answers them.
func (p *proxyProcess) takeover() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.flags.takeoverTimeout)
	defer cancel()
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	p.log.Info("takeover: starting a new process", "binary", exe)

	// Keep each admin socket open past its server's stop with a duplicate:
	// the new process gets it, or this one serves it again.
	adminLns := map[string]net.Listener{}
	for _, s := range p.admins {
		f, err := listenfd.Dup(s.ln)
		if err == nil {
			var ln net.Listener
			ln, err = net.FileListener(f)
			f.Close()
			adminLns[s.name] = ln
		}
		if err != nil {
			for _, ln := range adminLns {
				ln.Close()
			}
			return fmt.Errorf("keep admin socket %s: %w", s.name, err)
		}
	}
	for _, s := range p.admins {
		if err := s.stop(ctx); err != nil {
			p.log.Warn("takeover: stop admin", "listener", s.name, "error", err)
		}
	}
	p.admins = nil
	p.saveState()

	lns := map[string]net.Listener{}
	for _, s := range p.traffic {
		lns[s.name] = s.ln
	}
	for n, ln := range adminLns {
		lns[n] = ln
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Stdout, cmd.Stderr = p.stdout, p.stderr
	child, err := listenfd.Start(ctx, cmd, lns)
	if err != nil {
		for n, ln := range adminLns {
			p.serveAdmin(n, ln)
		}
		return err
	}

	// From here on the state file is the new process's.
	p.saveMu.Lock()
	p.saveOff = true
	p.saveMu.Unlock()
	p.log.Info("takeover: new process serves; draining", "pid", child.Process.Pid)
	for _, ln := range adminLns {
		ln.Close()
	}
	sctx, scancel := context.WithTimeout(context.Background(), p.flags.shutdownTimeout)
	defer scancel()
	p.stopAll(sctx, false)
	p.log.Info("takeover: drained; exiting")
	return nil
}
