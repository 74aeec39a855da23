package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-dev/gantry/internal/pgtest"
)

// netLab is a network of hosts for a test: one network namespace per host,
// each with one address on a bridge that lives in a namespace of its own,
// so that nothing of it touches the machine's own network (no address,
// route or firewall rule outside the lab's namespaces). Programs run on a
// host with nsenter; the test reaches hosts through Dial, which
// opens its connections from a host's namespace. Unix sockets are files,
// so the test still talks to its child servers over theirs.
type netLab struct {
	t      testing.TB
	prefix string            // of the namespace and link names
	addrs  map[string]string // host → address
	n      int
}

// labSubnet is the lab's network; every lab is isolated on its own
// bridge, so two labs at once do not clash.
const labSubnet = "10.231.0."

// newNetLab creates an empty lab, removed when the test ends. It needs
// root, ip(8), iptables and nsenter: without them the test is skipped, or fails when
// GANTRY_INTEGRATION=1.
func newNetLab(t testing.TB) *netLab {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "network namespaces need root"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "ip (iproute2) is not installed"
	} else if _, err := exec.LookPath("iptables"); err != nil {
		why = "iptables is not installed"
	} else if _, err := exec.LookPath("nsenter"); err != nil {
		why = "nsenter (util-linux) is not installed"
	}
	if why != "" {
		if os.Getenv("GANTRY_INTEGRATION") == "1" {
			t.Fatalf("%s (and GANTRY_INTEGRATION=1)", why)
		}
		t.Skip(why + "; run as root, or set GANTRY_INTEGRATION=1 to make this a failure")
	}
	l := &netLab{t: t, prefix: fmt.Sprintf("gl%d", os.Getpid()%100000), addrs: map[string]string{}}
	t.Cleanup(l.remove)
	l.ip("netns", "add", l.prefix)
	l.ip("-n", l.prefix, "link", "add", "br0", "type", "bridge")
	l.ip("-n", l.prefix, "link", "set", "br0", "up")
	return l
}

func (l *netLab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// ns is the namespace of host.
func (l *netLab) ns(host string) string { return l.prefix + "-" + host }

// host adds a host at labSubnet+octet and returns its address.
func (l *netLab) host(name string, octet int) string {
	l.t.Helper()
	l.n++
	ns, link := l.ns(name), fmt.Sprintf("%sv%d", l.prefix, l.n)
	addr := labSubnet + strconv.Itoa(octet)
	l.ip("netns", "add", ns)
	l.addrs[name] = addr
	l.ip("-n", l.prefix, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
	l.ip("-n", l.prefix, "link", "set", link, "master", "br0", "up")
	l.ip("-n", ns, "addr", "add", addr+"/24", "dev", "eth0")
	l.ip("-n", ns, "link", "set", "eth0", "up")
	l.ip("-n", ns, "link", "set", "lo", "up")
	return addr
}

// wrap is the command prefix that runs a program on host; it execs the
// program, which keeps the PID the test started. It enters the host's
// network namespace only (not `ip netns exec`, which also gives the
// program a /sys of its own, without the cgroups dockerd needs).
func (l *netLab) wrap(host string) []string {
	return []string{"nsenter", "--net=/var/run/netns/" + l.ns(host)}
}

// command runs name on host.
func (l *netLab) command(host, name string, args ...string) *exec.Cmd {
	w := l.wrap(host)
	return exec.Command(w[0], append(append(w[1:], name), args...)...)
}

// wrapper writes an executable that runs bin on host, for helpers that
// take a program's path.
func (l *netLab) wrapper(host, bin string) string {
	l.t.Helper()
	p := filepath.Join(l.t.TempDir(), "on-"+host)
	script := fmt.Sprintf("#!/bin/sh\nexec %s %s \"$@\"\n", strings.Join(l.wrap(host), " "), bin)
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		l.t.Fatal(err)
	}
	return p
}

// Dial opens connections from host's namespace.
func (l *netLab) Dial(host string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (conn net.Conn, err error) {
		err = l.inNamespace(host, func() (err error) {
			conn, err = (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, addr)
			return err
		})
		return conn, err
	}
}

// inNamespace runs fn on a thread that has entered host's network
// namespace: a socket fn creates stays in it whichever thread uses it.
func (l *netLab) inNamespace(host string, fn func() error) error {
	path := "/var/run/netns/" + l.ns(host)
	runtime.LockOSThread()
	self, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer self.Close()
	target, err := os.Open(path)
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer target.Close()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", path, err)
	}
	err = fn()
	if serr := setns(self); serr == nil {
		// A thread that could not go back stays locked: Go ends it with
		// this goroutine instead of reusing it.
		runtime.UnlockOSThread()
	}
	return err
}

func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// Listen listens on addr (an address of host) from host's namespace.
func (l *netLab) Listen(host, addr string) net.Listener {
	l.t.Helper()
	var ln net.Listener
	err := l.inNamespace(host, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		l.t.Fatalf("listen on %s at %s: %v", host, addr, err)
	}
	return ln
}

// client is an HTTP client on host.
func (l *netLab) client(host string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: l.Dial(host)}}
}

// partition drops every packet between host and the hosts named, both
// ways, inside host's namespace: connections time out, nothing is reset.
func (l *netLab) partition(host string, from ...string) { l.rules(host, "-A", from) }

// heal removes what partition added.
func (l *netLab) heal(host string, from ...string) { l.rules(host, "-D", from) }

func (l *netLab) rules(host, op string, from []string) {
	l.t.Helper()
	for _, f := range from {
		for _, r := range [][]string{{op, "OUTPUT", "-d", l.addrs[f], "-j", "DROP"}, {op, "INPUT", "-s", l.addrs[f], "-j", "DROP"}} {
			if out, err := l.command(host, "iptables", r...).CombinedOutput(); err != nil {
				l.t.Fatalf("iptables %s on %s: %v: %s", strings.Join(r, " "), host, err, out)
			}
		}
	}
}

// remove deletes the lab's namespaces (their links go with them); the
// programs in them were stopped by their own cleanups, which run first.
func (l *netLab) remove() {
	for h := range l.addrs {
		exec.Command("ip", "netns", "del", l.ns(h)).Run()
	}
	exec.Command("ip", "netns", "del", l.prefix).Run()
}

// startPostgresOn runs a throwaway PostgreSQL on host, listening on the
// host's address (and on a unix socket in its directory, where the test
// creates databases), accepting the lab's hosts without a password. It
// returns the URL of a new database name as the lab's hosts reach it, and
// as the test reaches it (over the unix socket).
func startPostgresOn(t testing.TB, l *netLab, host, db string) (labURL, localURL string) {
	t.Helper()
	bin, err := pgtest.FindBinDir()
	if err != nil {
		if os.Getenv("GANTRY_INTEGRATION") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	u, err := user.Lookup(pgtest.RunAs)
	if err != nil {
		pgtest.Start(t).Stop() // creates the user PostgreSQL runs as
		if u, err = user.Lookup(pgtest.RunAs); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "gl-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	os.Chown(dir, uid, gid)
	asPG := []string{"setpriv", "--reuid=" + u.Uid, "--regid=" + u.Gid, "--clear-groups"}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(asPG[0], append(asPG[1:], filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")...)
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	hba, _ := os.OpenFile(filepath.Join(data, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	fmt.Fprintf(hba, "host all all %s0/24 trust\n", labSubnet)
	hba.Close()
	logf, _ := os.Create(filepath.Join(dir, "postgres.log"))
	defer logf.Close()
	argv := append(append(l.wrap(host), asPG...), filepath.Join(bin, "postgres"), "-D", data, "-p", "5432", "-h", l.addrs[host], "-k", dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=200")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGINT) // fast shutdown
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	})
	waitUntil(t, 60*time.Second, func() bool {
		return exec.Command(filepath.Join(bin, "psql"), "-h", dir, "-U", "postgres", "-c", "CREATE DATABASE "+db).Run() == nil
	})
	return fmt.Sprintf("postgres://postgres@%s:5432/%s?sslmode=disable", l.addrs[host], db),
		fmt.Sprintf("postgres://postgres@/%s?host=%s&port=5432&sslmode=disable", db, dir)
}
