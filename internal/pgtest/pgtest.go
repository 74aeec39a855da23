// Package pgtest starts a throwaway PostgreSQL 15 server for tests: initdb on
// a temporary directory, postgres on a free loopback port, stopped by PID
// when the test (or the test binary) ends.
//
// It is a test helper only: it must never be imported by code compiled into
// the gantry binary, and it never touches a PostgreSQL it did not start.
package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/lib/pq" // the driver the instance is probed with
)

// BinDirs are where PostgreSQL 15's server binaries are looked for, in order
// (Debian's postgresql-15 package installs them in the first).
var BinDirs = []string{"/usr/lib/postgresql/15/bin", "/usr/local/pgsql/bin"}

// ErrNotInstalled says that no PostgreSQL 15 server binaries were found.
var ErrNotInstalled = errors.New("pgtest: PostgreSQL 15 server binaries (initdb, postgres) not found; install Debian's postgresql-15 and postgresql-client-15")

// RunAs is the unprivileged system user the server runs as when the tests run
// as root: PostgreSQL refuses to run as root.
const RunAs = "gantrytest"

// Instance is one running PostgreSQL server.
type Instance struct {
	BinDir string // initdb, postgres, pg_dump, … live here
	Dir    string // temporary directory: data/ and the log
	Port   int
	// URL is a superuser URL to the "postgres" database.
	URL string

	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// Start starts a server for tb and stops it when tb ends. It skips tb when
// PostgreSQL 15 is not installed, unless GANTRY_INTEGRATION=1 (then it fails).
func Start(tb testing.TB) *Instance {
	tb.Helper()
	inst, err := New()
	if errors.Is(err, ErrNotInstalled) && os.Getenv("GANTRY_INTEGRATION") != "1" {
		tb.Skip(err)
	} else if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := inst.Stop(); err != nil {
			tb.Errorf("stop postgres: %v", err)
		}
	})
	return inst
}

// FindBinDir returns the first of BinDirs holding initdb and postgres.
func FindBinDir() (string, error) {
	for _, d := range BinDirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	return "", ErrNotInstalled
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// New starts a server without a testing.TB, for a TestMain that shares one
// server across a package's tests; the caller must Stop it.
func New() (*Instance, error) {
	bin, err := FindBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, err
	}
	cred, err := credential(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	inst := &Instance{BinDir: bin, Dir: dir}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	if out, err := initdb.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	// A free port may be taken between our probe and postgres binding it:
	// try a few times before giving up.
	for attempt := 0; ; attempt++ {
		err = inst.launch(data, cred)
		if err == nil {
			return inst, nil
		}
		if attempt == 3 {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// credential returns the credential to run the server with: nil when not
// root, else RunAs's (created if missing), after handing dir over to it.
func credential(dir string) (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(RunAs)
	if err != nil {
		out, aerr := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", RunAs).CombinedOutput()
		if aerr != nil && !strings.Contains(string(out), "already exists") {
			return nil, fmt.Errorf("useradd %s: %v: %s", RunAs, aerr, out)
		}
		if u, err = user.Lookup(RunAs); err != nil {
			return nil, err
		}
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (i *Instance) launch(data string, cred *syscall.Credential) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(i.Dir, "postgres.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	// Durability is pointless for a throwaway server and costs seconds under
	// CPU contention; the socket directory is ours so nothing else collides.
	cmd := exec.Command(filepath.Join(i.BinDir, "postgres"), "-D", data,
		"-p", strconv.Itoa(port), "-h", "127.0.0.1", "-k", i.Dir,
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
		"-c", "max_connections=200", "-c", "log_min_messages=warning")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	i.cmd, i.Port, i.exited = cmd, port, make(chan struct{})
	go func() { _ = cmd.Wait(); close(i.exited) }()
	i.URL = i.URLFor("postgres")
	if err := i.waitReady(60 * time.Second); err != nil {
		_ = i.kill()
		b, _ := os.ReadFile(logPath)
		return fmt.Errorf("postgres did not become ready: %v\n%s", err, tail(b, 2000))
	}
	return nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func (i *Instance) waitReady(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	db, err := sql.Open("postgres", i.URL)
	if err != nil {
		return err
	}
	defer db.Close()
	for {
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err = db.PingContext(pctx)
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-i.exited:
			return fmt.Errorf("postgres exited: %w", err)
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// URLFor returns a superuser URL to database name on this server.
func (i *Instance) URLFor(name string) string {
	u := url.URL{Scheme: "postgres", User: url.User("postgres"), Host: net.JoinHostPort("127.0.0.1", strconv.Itoa(i.Port)), Path: "/" + name, RawQuery: "sslmode=disable"}
	return u.String()
}

// CreateDB creates an empty database and returns a superuser URL to it.
func (i *Instance) CreateDB(tb testing.TB, name string) string {
	tb.Helper()
	db, err := sql.Open("postgres", i.URL)
	if err != nil {
		tb.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE DATABASE "` + strings.ReplaceAll(name, `"`, `""`) + `"`); err != nil {
		tb.Fatalf("create database %s: %v", name, err)
	}
	return i.URLFor(name)
}

// Bin returns the path of a PostgreSQL program (pg_dump, pg_restore, psql).
func (i *Instance) Bin(name string) string { return filepath.Join(i.BinDir, name) }

// Stop shuts the server down (fast shutdown, then SIGKILL after 10 s) and
// removes its directory.
func (i *Instance) Stop() error {
	var err error
	i.stopOnce.Do(func() {
		err = i.kill()
		if rerr := os.RemoveAll(i.Dir); rerr != nil && err == nil {
			err = rerr
		}
	})
	return err
}

func (i *Instance) kill() error {
	if i.cmd == nil || i.cmd.Process == nil {
		return nil
	}
	_ = i.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-i.exited:
		return nil
	case <-time.After(10 * time.Second):
		_ = i.cmd.Process.Kill()
		<-i.exited
		return errors.New("postgres did not stop within 10s; killed")
	}
}
