// Package listenfd hands listening sockets from a running process to a new
// copy of itself, so that a server can be restarted or upgraded without a
// moment in which its ports refuse connections: the kernel keeps queueing
// connections on the shared sockets while the old process stops accepting
// and the new one starts.
//
// The parent passes the sockets as inherited file descriptors (exec.Cmd
// ExtraFiles) and names them in an environment variable; the child finds
// them with Inherit and reports that it serves with Ready, through a pipe
// whose descriptor is named in a second variable. The package knows nothing
// about HTTP or about what the sockets serve, and must not close or stop
// anything of its caller: deciding when to stop accepting is the caller's.
package listenfd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Environment variables that carry the handover to the child.
const (
	// EnvListeners lists the inherited sockets as "name=fd,name=fd".
	EnvListeners = "GANTRY_LISTEN_FDS"
	// EnvReady is the descriptor of the pipe on which the child says it serves.
	EnvReady = "GANTRY_READY_FD"
)

// Inherited holds the sockets a process received from its parent.
type Inherited struct {
	files map[string]*os.File
	ready *os.File
}

// Inherit reads the handover variables of this process's environment, and
// removes them so that the process's own children do not see them. A
// process started without a handover gets an empty Inherited.
func Inherit() (*Inherited, error) {
	in, err := inherit(os.Getenv(EnvListeners), os.Getenv(EnvReady))
	os.Unsetenv(EnvListeners)
	os.Unsetenv(EnvReady)
	return in, err
}

func inherit(list, ready string) (*Inherited, error) {
	in := &Inherited{files: map[string]*os.File{}}
	if list != "" {
		for _, item := range strings.Split(list, ",") {
			name, fdText, ok := strings.Cut(item, "=")
			fd, err := strconv.Atoi(fdText)
			if !ok || name == "" || err != nil || fd < 3 {
				return nil, fmt.Errorf("%s: bad entry %q, want name=fd with fd >= 3", EnvListeners, item)
			}
			if _, dup := in.files[name]; dup {
				return nil, fmt.Errorf("%s: %q listed twice", EnvListeners, name)
			}
			// Close-on-exec, so that an inherited socket does not leak
			// into every program this process runs.
			syscall.CloseOnExec(fd)
			in.files[name] = os.NewFile(uintptr(fd), name)
		}
	}
	if ready != "" {
		fd, err := strconv.Atoi(ready)
		if err != nil || fd < 3 {
			return nil, fmt.Errorf("%s: bad descriptor %q", EnvReady, ready)
		}
		syscall.CloseOnExec(fd)
		in.ready = os.NewFile(uintptr(fd), "ready")
	}
	return in, nil
}

// Handover reports whether the process was started by a parent that waits
// for it to take over.
func (in *Inherited) Handover() bool { return in.ready != nil }

// Names lists the inherited sockets, sorted.
func (in *Inherited) Names() []string {
	names := make([]string, 0, len(in.files))
	for n := range in.files {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Listen returns the inherited socket called name if there is one, and a new
// listener on network and addr otherwise. An inherited socket is returned
// whatever addr says: it is the address the parent served, and the command
// line of an upgrade is the parent's.
func (in *Inherited) Listen(name, network, addr string) (net.Listener, error) {
	if f, ok := in.files[name]; ok {
		delete(in.files, name)
		l, err := net.FileListener(f)
		f.Close() // FileListener made its own descriptor
		if err != nil {
			return nil, fmt.Errorf("inherited listener %s: %w", name, err)
		}
		return l, nil
	}
	if network == "unix" {
		if err := removeStaleSocket(addr); err != nil {
			return nil, err
		}
	}
	return net.Listen(network, addr)
}

// Close closes the inherited sockets nobody asked for, since a restart may
// drop a listener (a flag removed), and the ready pipe if Ready was not
// called.
func (in *Inherited) Close() error {
	for n, f := range in.files {
		f.Close()
		delete(in.files, n)
	}
	if in.ready != nil {
		in.ready.Close()
		in.ready = nil
	}
	return nil
}

// Ready tells the parent that this process serves, so the parent may stop
// accepting. Without a parent waiting it does nothing.
func (in *Inherited) Ready() error {
	if in.ready == nil {
		return nil
	}
	_, err := in.ready.Write([]byte{'1'})
	in.ready.Close()
	in.ready = nil
	if err != nil {
		return fmt.Errorf("signal readiness: %w", err)
	}
	return nil
}

// removeStaleSocket removes a unix socket file that no process listens on:
// the last process to serve it does not unlink it (a process handing it over
// must not, and cannot tell that it is the last), so it stays behind.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: another process listens on it", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// Dup duplicates l's descriptor, for a child or to listen again after l is
// closed (net.FileListener). The socket stays open as long as a duplicate
// does, and connections keep queueing on it. It does not use
// (*net.TCPListener).File: exec calls Fd on what it passes, and Fd on such a
// file puts the socket, shared with l, in blocking mode; an Accept of l then
// holds a thread in the kernel and its Close waits for a connection. A
// descriptor wrapped by os.NewFile keeps its mode.
func Dup(l net.Listener) (*os.File, error) {
	sc, ok := l.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("a %T cannot be handed over", l)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	var nfd int
	var dupErr error
	err = raw.Control(func(fd uintptr) {
		syscall.ForkLock.RLock()
		defer syscall.ForkLock.RUnlock()
		nfd, dupErr = syscall.Dup(int(fd))
		if dupErr == nil {
			syscall.CloseOnExec(nfd)
		}
	})
	if err != nil {
		return nil, err
	}
	if dupErr != nil {
		return nil, os.NewSyscallError("dup", dupErr)
	}
	return os.NewFile(uintptr(nfd), l.Addr().String()), nil
}

// Child is a process started to take over some listeners.
type Child struct {
	Process *os.Process
	done    chan struct{}
	err     error
}

// Wait waits for the child to exit, and returns how it ended.
func (c *Child) Wait() error {
	<-c.done
	return c.err
}

// Start runs cmd (whose ExtraFiles and environment it extends) with the
// given listeners, and waits until the child calls Ready, exits, or ctx ends.
// When it returns nil the child serves on the listeners; the caller's own
// listeners are untouched and still accept until the caller closes them.
// On error the child has been killed.
func Start(ctx context.Context, cmd *exec.Cmd, listeners map[string]net.Listener) (*Child, error) {
	names := make([]string, 0, len(listeners))
	for n := range listeners {
		names = append(names, n)
	}
	sort.Strings(names)
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	env := make([]string, 0, len(names))
	for _, n := range names {
		f, err := Dup(listeners[n])
		if err != nil {
			return nil, fmt.Errorf("listener %s: %w", n, err)
		}
		files = append(files, f)
		env = append(env, fmt.Sprintf("%s=%d", n, 3+len(cmd.ExtraFiles)+len(files)-1))
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer pr.Close()
	readyFD := 3 + len(cmd.ExtraFiles) + len(files)
	cmd.ExtraFiles = append(append(cmd.ExtraFiles, files...), pw)
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.Env = append(withoutHandover(cmd.Env),
		EnvListeners+"="+strings.Join(env, ","),
		EnvReady+"="+strconv.Itoa(readyFD))
	err = cmd.Start()
	pw.Close() // the child holds the write end now; EOF means it exited
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	c := &Child{Process: cmd.Process, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()

	readErr := make(chan error, 1)
	go func() {
		var b [1]byte
		_, err := io.ReadFull(pr, b[:])
		readErr <- err
	}()
	select {
	case err := <-readErr:
		if err == nil {
			return c, nil
		}
		c.Process.Kill()
		<-c.done
		return nil, fmt.Errorf("child exited before it was ready: %v", c.err)
	case <-ctx.Done():
		c.Process.Kill()
		<-c.done
		return nil, fmt.Errorf("child not ready: %w", ctx.Err())
	}
}

func withoutHandover(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, EnvListeners+"=") || strings.HasPrefix(kv, EnvReady+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
