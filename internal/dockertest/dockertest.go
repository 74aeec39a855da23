// Package dockertest starts a throwaway Docker Engine and Docker registries on
// loopback for tests: a dockerd with its own data root, exec root, pid file
// and unix socket under a temporary directory, without bridge networking or
// iptables rules (containers use host networking), and Debian's
// docker-registry binary on free loopback ports with a temporary config.
//
// A test binary starts them once, from TestMain, through Main, and tests get
// them with Get, which skips when dockerd or docker-registry is not installed
// (or the tests do not run as root), and fails instead when
// GANTRY_INTEGRATION=1. scripts/test.sh installs the Debian packages
// docker.io and docker-registry.
//
// It must never touch the machine's own Docker daemon (/var/run/docker.sock)
// or any process it did not start: everything it starts is stopped by PID.
// It is imported by tests only.
package dockertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
)

// IntegrationEnv names the variable that turns a missing dependency into a
// failure instead of a skip.
const IntegrationEnv = "GANTRY_INTEGRATION"

// Start-up and shutdown deadlines: generous because the machine is shared.
const (
	readyTimeout = 60 * time.Second
	stopTimeout  = 20 * time.Second
	pollEvery    = 50 * time.Millisecond
)

// Env is what Main started for a test binary.
type Env struct {
	Engine     *Engine
	Registries []*Registry
	dir        string
}

var (
	current    *Env
	currentErr error
	unusable   error // why docker cannot run here, for Get to skip
)

// Main starts an engine and n registries, runs the tests, stops everything
// and returns the exit code, for TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(dockertest.Main(m, 2, setup)) }
//
// setup (optional) runs once everything is up, before the tests; an error
// from it fails every test that calls Get. When docker cannot run here the
// tests still run and Get skips (or fails) them.
func Main(m interface{ Run() int }, registries int, setup func(*Env) error) int {
	if err := Usable(); err != nil {
		unusable = err
		return m.Run()
	}
	env, err := Start(registries)
	if err != nil {
		currentErr = err
		return m.Run()
	}
	current = env
	if setup != nil {
		if err := setup(env); err != nil {
			currentErr = fmt.Errorf("dockertest setup: %w", err)
		}
	}
	code := m.Run()
	if err := env.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "dockertest:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// TB is the part of testing.TB that Get uses.
type TB interface {
	Helper()
	Skip(args ...any)
	Fatal(args ...any)
}

// Get returns the Env that Main started. It skips tb when docker cannot run
// here, unless GANTRY_INTEGRATION=1, and fails it when start-up failed.
func Get(tb TB) *Env {
	tb.Helper()
	if unusable != nil {
		if os.Getenv(IntegrationEnv) == "1" {
			tb.Fatal("dockertest: ", unusable, " (and "+IntegrationEnv+"=1)")
		}
		tb.Skip("dockertest: ", unusable)
	}
	if currentErr != nil {
		tb.Fatal(currentErr)
	}
	if current == nil {
		tb.Fatal("dockertest: Get without Main in TestMain")
	}
	return current
}

// Usable says why a throwaway engine cannot be started here, or nil.
func Usable() error {
	for _, bin := range []string{"dockerd", "docker-registry"} {
		if _, err := lookPath(bin); err != nil {
			return fmt.Errorf("%s is not installed (Debian packages docker.io and docker-registry; scripts/test.sh installs them)", bin)
		}
	}
	if os.Geteuid() != 0 {
		return errors.New("dockerd needs root")
	}
	return nil
}

// lookPath also looks in the sbin directories, which a non-login PATH lacks.
func lookPath(bin string) (string, error) {
	if p, err := exec.LookPath(bin); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"} {
		p := filepath.Join(dir, bin)
		if st, err := os.Stat(p); err == nil && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", exec.ErrNotFound
}

// Start starts an engine and n registries under one fresh temporary
// directory. Close stops them and removes the directory.
func Start(registries int) (*Env, error) {
	// Short: the engine's unix sockets live under it (108-byte limit).
	dir, err := os.MkdirTemp("", "gdt-")
	if err != nil {
		return nil, err
	}
	env := &Env{dir: dir}
	type result struct {
		reg *Registry
		err error
	}
	// The registries start while dockerd does: start-up is what tests wait for.
	results := make(chan result, registries)
	for i := range registries {
		go func() {
			r, err := StartRegistry(filepath.Join(dir, fmt.Sprintf("registry%d", i)))
			results <- result{r, err}
		}()
	}
	eng, engErr := StartEngine(filepath.Join(dir, "engine"))
	env.Engine = eng
	var errs []error
	if engErr != nil {
		errs = append(errs, engErr)
	}
	for range registries {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
		} else {
			env.Registries = append(env.Registries, r.reg)
		}
	}
	if len(errs) > 0 {
		_ = env.Close()
		return nil, errors.Join(errs...)
	}
	return env, nil
}

// Close stops the engine (after killing its containers, so that their stop
// timeouts do not hold it up) and the registries, and removes their files.
func (e *Env) Close() error {
	var errs []error
	if e.Engine != nil {
		errs = append(errs, e.Engine.Close())
	}
	for _, r := range e.Registries {
		errs = append(errs, r.Close())
	}
	unmountUnder(e.dir)
	if err := os.RemoveAll(e.dir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Engine is a running throwaway dockerd.
type Engine struct {
	// Host is the engine's address for the Docker client: unix://<dir>/docker.sock.
	Host string
	Dir  string
	Log  string // dockerd's output
	cmd  *exec.Cmd
	done chan struct{}
}

// StartEngine starts dockerd with everything under dir and waits until it
// answers.
func StartEngine(dir string) (*Engine, error) { return StartEngineWith(dir, Options{}) }

// Options place a throwaway program elsewhere than on the test's own
// network, e.g. in a network namespace a test created.
type Options struct {
	// Wrap is run with the program's command line as its arguments
	// ("ip", "netns", "exec", NS), and must exec it (keep its PID).
	Wrap []string
	// Args are more arguments of the program: for dockerd, another -H
	// tcp://ADDR:PORT, --insecure-registry ADDR.
	Args []string
	// Addr is where a registry listens (default a free loopback port);
	// Client reaches it (default a plain client).
	Addr   string
	Client *http.Client
}

func (o Options) command(bin string, args ...string) *exec.Cmd {
	argv := append(append(append([]string(nil), o.Wrap...), bin), args...)
	argv = append(argv, o.Args...)
	return exec.Command(argv[0], argv[1:]...)
}

// StartEngineWith is StartEngine as o says.
func StartEngineWith(dir string, o Options) (*Engine, error) {
	bin, err := lookPath("dockerd")
	if err != nil {
		return nil, errors.New("dockerd is not installed")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "docker.sock")
	e := &Engine{Host: "unix://" + sock, Dir: dir, Log: filepath.Join(dir, "dockerd.log"), done: make(chan struct{})}
	logf, err := os.Create(e.Log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	e.cmd = o.command(bin,
		"--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"),
		"-H", e.Host,
		"--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
		"--userland-proxy=false",
		// The machine's own daemon.json may not apply to a throwaway engine.
		"--config-file", writeFile(filepath.Join(dir, "daemon.json"), "{}"),
	)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	e.cmd.Env = append(os.Environ(), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	e.cmd.SysProcAttr = ownGroup()
	if err := e.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	go func() { _ = e.cmd.Wait(); close(e.done) }()

	cli, err := e.Client()
	if err != nil {
		e.kill()
		return nil, err
	}
	defer cli.Close()
	deadline := time.Now().Add(readyTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Ping(ctx)
		cancel()
		if err == nil {
			return e, nil
		}
		select {
		case <-e.done:
			return nil, fmt.Errorf("dockerd exited at start-up: %s", tail(e.Log, 15))
		default:
		}
		if time.Now().After(deadline) {
			e.kill()
			return nil, fmt.Errorf("dockerd did not answer within %s: %v; log: %s", readyTimeout, err, tail(e.Log, 15))
		}
		time.Sleep(pollEvery)
	}
}

// Client returns a Docker client of the engine.
func (e *Engine) Client() (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost(e.Host), client.WithAPIVersionNegotiation())
}

// Close kills the engine's containers, stops dockerd with SIGTERM (SIGKILL
// after a while) and waits for it.
func (e *Engine) Close() error {
	select {
	case <-e.done:
		return nil
	default:
	}
	if cli, err := e.Client(); err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		if list, err := cli.ContainerList(ctx, container.ListOptions{All: true}); err == nil {
			for _, c := range list {
				_ = cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
			}
		}
		cancel()
		cli.Close()
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.done:
		return nil
	case <-time.After(stopTimeout):
		e.kill()
		return fmt.Errorf("dockerd did not stop within %s of SIGTERM; killed", stopTimeout)
	}
}

// kill ends dockerd's process group (dockerd and the containerd it runs).
func (e *Engine) kill() {
	_ = syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	<-e.done
}

// Registry is a running throwaway docker registry.
type Registry struct {
	// Addr is host:port on loopback; images are named Addr + "/repo".
	Addr string
	Dir  string
	Log  string
	cmd  *exec.Cmd
	done chan struct{}
}

// StartRegistry starts docker-registry on a free loopback port, storing
// under dir, with deletes enabled, and waits until /v2/ answers.
func StartRegistry(dir string) (*Registry, error) { return StartRegistryWith(dir, Options{}) }

// StartRegistryWith is StartRegistry as o says.
func StartRegistryWith(dir string, o Options) (*Registry, error) {
	bin, err := lookPath("docker-registry")
	if err != nil {
		return nil, errors.New("docker-registry is not installed")
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	// The port is free a moment before the registry binds it; a rare clash
	// shows as a registry that exits, and start-up tries another port.
	var lastErr error
	for range 3 {
		r, err := startRegistry(bin, dir, o)
		if err == nil {
			return r, nil
		}
		lastErr = err
	}
	return nil, lastErr
}

func startRegistry(bin, dir string, o Options) (*Registry, error) {
	addr := o.Addr
	if addr == "" {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		addr = fmt.Sprintf("127.0.0.1:%d", port)
	}
	r := &Registry{Addr: addr, Dir: dir, Log: filepath.Join(dir, "registry.log"), done: make(chan struct{})}
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "data"), r.Addr)
	cfg := writeFile(filepath.Join(dir, "config.yml"), config)
	logf, err := os.Create(r.Log)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	r.cmd = o.command(bin, "serve", cfg)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = ownGroup()
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start docker-registry: %w", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	hc := o.Client
	if hc == nil {
		hc = &http.Client{Timeout: time.Second}
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		resp, err := hc.Get("http://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		select {
		case <-r.done:
			return nil, fmt.Errorf("docker-registry exited at start-up: %s", tail(r.Log, 10))
		default:
		}
		if time.Now().After(deadline) {
			_ = r.Close()
			return nil, fmt.Errorf("docker-registry did not answer within %s: %v", readyTimeout, err)
		}
		time.Sleep(pollEvery)
	}
}

// Close stops the registry by PID.
func (r *Registry) Close() error {
	select {
	case <-r.done:
		return nil
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(stopTimeout):
		_ = syscall.Kill(-r.cmd.Process.Pid, syscall.SIGKILL)
		<-r.done
	}
	return nil
}

// ownGroup puts a started program in its own process group, so that a
// Ctrl-C of the tests reaches it only through Close, and has the kernel
// send it SIGTERM if the test binary dies without Close (a timeout panic):
// a throwaway engine must not outlive its tests.
func ownGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// writeFile writes data to path and returns path; a failure shows later as
// the program that reads it failing to start, with its log.
func writeFile(path, data string) string {
	_ = os.WriteFile(path, []byte(data), 0o600)
	return path
}

// tail returns the last n lines of a file, for start-up errors.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// RemoveAll removes dir, where an engine ran, once it is stopped.
func RemoveAll(dir string) error {
	unmountUnder(dir)
	return os.RemoveAll(dir)
}

// unmountUnder unmounts what a killed engine may have left mounted under
// dir (overlay layers, the exec root), deepest first, so it can be removed.
func unmountUnder(dir string) {
	if dir == "" {
		return
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			mounts = append(mounts, f[4])
		}
	}
	for i := len(mounts) - 1; i >= 0; i-- {
		_ = syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
}
