package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
)

// The test binary doubles as a server process for the crash tests: with
// GANTRY_TEST_CHILD=server it runs a Server and, when GANTRY_TEST_CRASH_AT
// names a journal step, kills itself with SIGKILL right there. The hook
// lives here, in a test file, so it is never compiled into the gantry binary.
func TestMain(m *testing.M) {
	if os.Getenv("GANTRY_TEST_CHILD") == "server" {
		os.Exit(childServer())
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func childServer() int {
	s := &Server{
		DataDir:    os.Getenv("GANTRY_TEST_DATA"),
		Listen:     cmp.Or(os.Getenv("GANTRY_TEST_LISTEN"), "127.0.0.1:0"),
		RouterAddr: os.Getenv("GANTRY_TEST_ROUTER"),
		ProxyAdmin: os.Getenv("GANTRY_TEST_PROXY_ADMIN"),
		ProxyURL:   os.Getenv("GANTRY_TEST_PROXY_URL"),
		Logger:     newLogger(os.Stderr, "text"),
		// Several servers on one PostgreSQL store (leader_test.go).
		StoreURL:      os.Getenv("GANTRY_TEST_STORE"),
		FollowRouters: os.Getenv("GANTRY_TEST_FOLLOW_ROUTERS") != "",
		ArtifactsAt:   os.Getenv("GANTRY_TEST_ARTIFACTS"),
		LeaseTTL:      time.Second,
		SecretsKey:    os.Getenv("GANTRY_TEST_SECRETS_KEY"),
	}
	ctx := context.Background()
	if err := s.Open(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "child server:", err)
		return 1
	}
	if at := os.Getenv("GANTRY_TEST_CRASH_AT"); at != "" {
		crashAt(s, at)
	}
	if path := os.Getenv("GANTRY_TEST_CRASH_FILE"); path != "" {
		crashByFile(s, path)
	}
	if at, path := os.Getenv("GANTRY_TEST_FILL_AT"), os.Getenv("GANTRY_TEST_FILL"); at != "" && path != "" {
		var once sync.Once
		s.Orchestrator.OnStep = func(d *gantry.Deployment, st gantry.Step) {
			if d.Kind+":"+st.Name+":"+st.State == at {
				once.Do(func() { fillDisk(path) })
			}
		}
	}
	// Tests talk to the child through its unix socket, as its own user:
	// admin without a token.
	fmt.Printf("READY %s %s %s\n", "unix://"+s.SocketPath, s.RouterURL, s.APIURL)
	// Serve until stdin closes (the test ends) or a signal arrives.
	io.Copy(io.Discard, os.Stdin)
	s.Close()
	return 0
}

// crashAt makes the child server kill itself (SIGKILL) at a point named
// by at: KIND:STEP:STATE, a journal event; spawn:N, right after its driver
// started the Nth instance and before the orchestrator saved it; finish,
// once a deployment's outcome is recorded and before its lock is freed.
func crashAt(s *Server, at string) {
	die := func() { syscall.Kill(os.Getpid(), syscall.SIGKILL); select {} }
	switch {
	case strings.HasPrefix(at, "spawn:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(at, "spawn:"))
		drv := s.Orchestrator.Drivers["process"]
		s.Orchestrator.Drivers["process"] = &spawnKiller{Driver: drv, n: int32(n), die: die}
	case at == "finish":
		s.Orchestrator.OnFinish = func(*gantry.Deployment) { die() }
	default:
		s.Orchestrator.OnStep = func(d *gantry.Deployment, st gantry.Step) {
			if d.Kind+":"+st.Name+":"+st.State == at {
				die()
			}
		}
	}
}

// spawnKiller is the child server's driver when it is to die right after
// starting its nth instance: the instance runs, its handle is never saved.
type spawnKiller struct {
	gantry.Driver
	n, started int32
	die        func()
}

func (k *spawnKiller) Start(ctx context.Context, spec gantry.InstanceSpec) (gantry.Instance, error) {
	inst, err := k.Driver.Start(ctx, spec)
	if err == nil && atomic.AddInt32(&k.started, 1) == k.n {
		k.die()
	}
	return inst, err
}

// fillDisk writes path until the filesystem is full, for a test to
// remove it again once it has seen what a full disk does.
func fillDisk(path string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fill the disk:", err)
		return
	}
	defer f.Close()
	chunk := bytes.Repeat([]byte{'x'}, 1<<20)
	for n := len(chunk); n > 0; n /= 2 {
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	fmt.Fprintln(os.Stderr, "child server: the disk is full now")
}

// childProc is a server running in a child process.
type childProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	API    string
	Router string
	TCP    string // the API's TCP address (tokens needed there)
	stderr *bytes.Buffer
}

func startChild(t *testing.T, dataDir, routerAddr, crashAt string, env ...string) *childProc {
	t.Helper()
	return startChildCmd(t, exec.Command(os.Args[0], "-test.run=^$"), dataDir, routerAddr, crashAt, env...)
}

// startChildCmd is startChild with the command that runs the test binary
// (e.g. in a network namespace: netns_test.go).
func startChildCmd(t testing.TB, cmd *exec.Cmd, dataDir, routerAddr, crashAt string, env ...string) *childProc {
	t.Helper()
	cmd.Env = append(os.Environ(), "GANTRY_TEST_CHILD=server", "GANTRY_TEST_DATA="+dataDir,
		"GANTRY_TEST_ROUTER="+routerAddr, "GANTRY_TEST_CRASH_AT="+crashAt)
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &syncWriter{w: &stderr}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "READY ") {
				line <- sc.Text()
			}
		}
		close(line)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			cmd.Wait()
			t.Fatalf("child server exited before it was ready:\n%s", stderr.String())
		}
		f := strings.Fields(l)
		c := &childProc{cmd: cmd, stdin: stdin, API: f[1], Router: f[2], stderr: &stderr}
		if len(f) > 3 {
			c.TCP = f[3]
		}
		// A child still running when its test ends (a failed assertion)
		// is stopped before the test's other cleanups look at its state.
		t.Cleanup(func() {
			if c.cmd.ProcessState == nil {
				c.stop()
			}
		})
		return c
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("child server not ready after 60s:\n%s", stderr.String())
	}
	return nil
}

// stop ends the child gracefully; instances keep running.
func (c *childProc) stop() {
	c.stdin.Close()
	done := make(chan struct{})
	go func() { c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
		<-done
	}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// freeAddr returns a loopback address with a port that was free just now.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// needTools skips (or, in CI, fails) when git or go is missing.
func needTools(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"git", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("GANTRY_INTEGRATION") == "1" {
				t.Fatalf("%s is required (GANTRY_INTEGRATION=1)", tool)
			}
			t.Skipf("%s not on PATH", tool)
		}
	}
}

// helloRepo makes the sample app's git repository (1.0.0 tagged v1.0.0,
// then 1.1.0 tagged v1.1.0) in a new directory.
func helloRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "hello")
	if err := (&demo{}).makeRepo(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// testSockets maps the API URL of a server that a test opened in-process to
// its unix socket, where the test, running as the server's user, is admin
// without a token.
var testSockets sync.Map

// testerTokens holds, per socket, the secret of an admin token named
// "tester", so that the CLI in tests acts as "tester" over TCP.
var (
	testerMu     sync.Mutex
	testerTokens = map[string]string{}
)

// registerSocket says that the server at url listens on socket too, for
// as long as the test runs: once its server stops, another test's server
// may get the same port.
func registerSocket(tb testing.TB, url, socket string) {
	testSockets.Store(url, socket)
	tb.Cleanup(func() { testSockets.CompareAndDelete(url, socket) })
}

func testerToken(t testing.TB, socket string) string {
	t.Helper()
	testerMu.Lock()
	defer testerMu.Unlock()
	if tok, ok := testerTokens[socket]; ok {
		return tok
	}
	ct, err := api.NewClient(socket, "").CreateToken(context.Background(), api.CreateTokenRequest{Name: "tester", Role: gantry.RoleAdmin})
	if err != nil {
		t.Fatalf("create the tester token: %v", err)
	}
	testerTokens[socket] = ct.Secret
	return ct.Secret
}

// runCLI runs the CLI in-process against server and returns its output and exit code.
func runCLI(t *testing.T, server string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var token string
	if sock, ok := testSockets.Load(server); ok {
		token = testerToken(t, sock.(string))
	}
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		switch k {
		case "GANTRY_SERVER":
			return server
		case "GANTRY_ACTOR":
			return "tester"
		case "GANTRY_TOKEN":
			return token
		}
		return ""
	}}
	code = m.Run(context.Background(), args)
	return out.String(), errb.String(), code
}

// mustCLI runs the CLI and fails the test unless it exits 0.
func mustCLI(t *testing.T, server string, args ...string) string {
	t.Helper()
	out, errs, code := runCLI(t, server, args...)
	if code != 0 {
		t.Fatalf("gantry %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errs)
	}
	return out
}

var versionRE = regexp.MustCompile(`<dd id="version">([^<]+)</dd>`)

// getVersion fetches the page of host through the router and returns the version it shows.
func getVersion(routerURL, host string) (string, error) {
	return getVersionWith(&http.Client{Timeout: 5 * time.Second}, routerURL, host)
}

// getVersionWith is getVersion with client.
func getVersionWith(client *http.Client, routerURL, host string) (string, error) {
	req, _ := http.NewRequest(http.MethodGet, routerURL+"/", nil)
	req.Host = host
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d: %.200s", resp.StatusCode, b)
	}
	m := versionRE.FindSubmatch(b)
	if m == nil {
		return "", fmt.Errorf("no version in page: %.200s", b)
	}
	return string(m[1]), nil
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// gantryBinary builds the real gantry binary once per test run.
func gantryBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "gantry-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "gantry")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}
