package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/listenfd"
	"github.com/spf13/cobra"
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

func newProxyReloadCmd(m *Main) *cobra.Command {
	var pidFile string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Restart (or upgrade) a running proxy without refusing a connection",
		Long: `Send SIGHUP to the proxy named by its pid file and wait until a new process
serves in its place. Replace the binary first (by renaming over it) to
upgrade. If the new process fails to start, the old one keeps serving and
reload fails; the reason is in the proxy's log.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			old, err := readPidFile(pidFile)
			if err != nil {
				return gantry.Errorf(gantry.ENOTFOUND, "no running proxy: %v", err)
			}
			before, err := os.Stat(pidFile)
			if err != nil {
				return err
			}
			if err := syscall.Kill(old, syscall.SIGHUP); err != nil {
				return gantry.Errorf(gantry.ENOTFOUND, "proxy pid %d (from %s): %v", old, pidFile, err)
			}
			deadline := time.Now().Add(timeout)
			for {
				pid, err := readPidFile(pidFile)
				if err == nil && pid != old {
					return m.output(map[string]int{"old_pid": old, "pid": pid}, func(w io.Writer) {
						fmt.Fprintf(w, "proxy reloaded: pid %d serves in place of %d\n", pid, old)
					})
				}
				// The old process rewrites its pid file when the
				// takeover fails.
				if now, err := os.Stat(pidFile); err == nil && pid == old && !os.SameFile(before, now) {
					return gantry.Errorf(gantry.EUNAVAILABLE, "the new process failed to start; pid %d still serves (see its log)", old)
				}
				if time.Now().After(deadline) {
					return gantry.Errorf(gantry.EUNAVAILABLE, "no new proxy process within %s; pid %d still serves (see its log)", timeout, old)
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(20 * time.Millisecond):
				}
			}
		},
	}
	cmd.Flags().StringVar(&pidFile, "pid-file", defaultProxyPidFile, "pid file of the running proxy (its --pid-file)")
	cmd.Flags().DurationVar(&timeout, "timeout", 90*time.Second, "how long to wait for the new process")
	return cmd
}

func readPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s does not hold a process id", path)
	}
	return pid, nil
}
