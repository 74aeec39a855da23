package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDocs runs the how-tos: every command of every ```sh block of
// README.md, docs/canary.md and docs/workflows/*.md, in order, through the real binary, one
// subtest per document. A command that exits otherwise than printed fails
// the test with the document's file:line, the command, its output and its
// exit code.
//
// Each document runs in one `sh` session (so `cd`, variables and exports
// carry over from one command to the next) in a sandbox that stands for
// the root of a Gantry checkout: it holds a copy of examples/, HOME is a
// new directory with a git identity, and PATH starts with the freshly
// built gantry. What differs from a reader's terminal, and why:
//
//   - every port in a command, written 127.0.0.1:PORT or PORT=NNNN, is
//     replaced by a free port (the same one for the same number throughout
//     a document), so the test never binds the documented fixed ports;
//   - after a command that leaves a process in the background (ends with
//     `&`), the test waits until the first address of that command accepts
//     connections, as a reader would before typing the next command;
//   - the conventions of the markdown (docs_parse_test.go): `# exits N`,
//     `(not run by the docs test: REASON)`, `<!-- docs-test: skip REASON -->`.
//
// When the document ends, the processes it left in the background are
// stopped (SIGTERM) and the app instances of every server it started too.
func TestDocs(t *testing.T) {
	needTools(t)
	bin := gantryBinary(t)
	docs := []string{"README.md", "docs/canary.md", "docs/triggers.md"}
	ws, err := filepath.Glob("../../docs/workflows/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		docs = append(docs, strings.TrimPrefix(w, "../../"))
	}
	for _, doc := range docs {
		name := strings.TrimSuffix(filepath.Base(doc), ".md")
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("../..", doc))
			if err != nil {
				t.Fatal(err)
			}
			steps, err := parseDoc(doc, string(b))
			if err != nil {
				t.Fatal(err)
			}
			if !callsGantry(steps) {
				t.Skipf("%s runs no gantry command", doc)
			}
			setup := &docSetup{}
			if need := docNeeds[name]; need != nil {
				setup = need(t)
			}
			runDoc(t, bin, doc, steps, setup)
		})
	}
}

func callsGantry(steps []docStep) bool {
	for _, s := range steps {
		if strings.Contains(s.Text, "gantry ") {
			return true
		}
	}
	return false
}

// docSession is one document's shell and what it left behind.
type docSession struct {
	t      *testing.T
	doc    string
	dir    string // the sandbox, where the session starts
	sh     *exec.Cmd
	stdin  io.WriteCloser
	status *bufio.Scanner    // "N EXIT PID PWD" after each command
	ports  map[string]string // documented port → free port
	bg     []docBackground
	// dockerHost is the Docker Engine the document's servers use.
	dockerHost string
	shOut      *syncWriter
}

// docBackground is a process a command left running.
type docBackground struct {
	step docStep
	pid  int
	data string // its state directory, if it is a gantry server
	out  string // the file that receives its output
}

// addrRE matches the ports a command may bind or reach: 127.0.0.1:PORT, and
// PORT=NNNN (how the sample app is told where to listen).
var addrRE = regexp.MustCompile(`(127\.0\.0\.1:|\bPORT=)(\d{4,5})\b`)

func runDoc(t *testing.T, bin, doc string, steps []docStep, setup *docSetup) {
	s := newDocSession(t, bin, doc, setup)
	defer s.close()
	for i, st := range steps {
		if st.Skip != "" {
			t.Logf("%s:%d: not run (%s): %s", doc, st.Line, st.Skip, firstLine(st.Text))
			continue
		}
		if !s.run(i, st) {
			return
		}
	}
}

func newDocSession(t *testing.T, bin, doc string, setup *docSetup) *docSession {
	t.Helper()
	root := t.TempDir()
	dir, home, outs := filepath.Join(root, "gantry"), filepath.Join(root, "home"), filepath.Join(root, "out")
	for _, d := range []string{dir, home, outs} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(dir, "examples"), os.DirFS("../../examples")); err != nil {
		t.Fatal(err)
	}
	gitconfig := "[user]\n\tname = Docs Reader\n\temail = reader@gantry.localhost\n[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n"
	if err := os.WriteFile(filepath.Join(home, ".gitconfig"), []byte(gitconfig), 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + home, "PATH=" + filepath.Dir(bin) + string(os.PathListSeparator) + os.Getenv("PATH"),
		"LANG=C.UTF-8", "GOTOOLCHAIN=local", "GOFLAGS=-buildvcs=false"}
	for _, k := range []string{"GOCACHE", "GOMODCACHE", "GOPATH"} {
		v, err := exec.Command("go", "env", k).Output()
		if err != nil {
			t.Fatalf("go env %s: %v", k, err)
		}
		env = append(env, k+"="+strings.TrimSpace(string(v)))
	}
	for _, kv := range os.Environ() { // what the tools need, none of the caller's gantry settings
		if k, _, _ := strings.Cut(kv, "="); k == "TMPDIR" || k == "USER" || k == "GANTRY_INTEGRATION" {
			env = append(env, kv)
		}
	}
	if setup.dockerHost != "" {
		env = append(env, "DOCKER_HOST="+setup.dockerHost)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("sh")
	sh.Dir, sh.Env = dir, env
	sh.ExtraFiles = []*os.File{statusW} // fd 3
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := sh.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	shOut := &syncWriter{w: &strings.Builder{}} // the shell's own complaints
	sh.Stdout, sh.Stderr = shOut, shOut
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	statusW.Close()
	s := &docSession{t: t, doc: doc, dir: dir, sh: sh, stdin: stdin, status: bufio.NewScanner(statusR), ports: map[string]string{}, dockerHost: setup.dockerHost, shOut: shOut}
	for k, v := range setup.ports {
		s.ports[k] = v
	}
	return s
}

// run runs step i and reports whether the document may go on.
func (s *docSession) run(i int, st docStep) bool {
	t := s.t
	var first string // the first address the command names
	text := addrRE.ReplaceAllStringFunc(st.Text, func(a string) string {
		m := addrRE.FindStringSubmatch(a)
		if s.ports[m[2]] == "" {
			_, s.ports[m[2]], _ = net.SplitHostPort(freeAddr(t))
		}
		if first == "" {
			first = "127.0.0.1:" + s.ports[m[2]]
		}
		return m[1] + s.ports[m[2]]
	})
	shown := st.Text // as printed, and as run when the ports differ
	if text != st.Text {
		shown += "\n(run as: " + text + ")"
	}
	out := filepath.Join(filepath.Dir(s.dir), "out", strconv.Itoa(i))
	// The command reads no script from the session's stdin, and its
	// background processes do not hold the status pipe.
	script := fmt.Sprintf("{ %s\n} >%s 2>&1 </dev/null 3>&-\necho \"%d $? $! $PWD\" >&3\n", text, shQuote(out), i)
	if _, err := io.WriteString(s.stdin, script); err != nil {
		t.Fatalf("%s:%d: write to the shell: %v", s.doc, st.Line, err)
	}
	type result struct {
		fields []string
		ok     bool
	}
	done := make(chan result, 1)
	go func() {
		ok := s.status.Scan()
		done <- result{strings.SplitN(s.status.Text(), " ", 4), ok}
	}()
	start := time.Now()
	var r result
	select {
	case r = <-done:
	case <-time.After(docStepTimeout):
		syscall.Kill(-s.sh.Process.Pid, syscall.SIGKILL)
		t.Errorf("%s:%d: %s\nstill running after %s; output so far:\n%s%s", s.doc, st.Line, shown, docStepTimeout, readFile(out), s.backgroundLogs())
		return false
	}
	if !r.ok || len(r.fields) < 4 {
		s.shOut.mu.Lock()
		complaint := s.shOut.w.(*strings.Builder).String()
		s.shOut.mu.Unlock()
		t.Errorf("%s:%d: %s\nthe shell ended (a syntax error?): %s\noutput:\n%s", s.doc, st.Line, shown, complaint, readFile(out))
		return false
	}
	code, _ := strconv.Atoi(r.fields[1])
	t.Logf("%s:%d: exit %d in %.1fs: %s\n%s", s.doc, st.Line, code, time.Since(start).Seconds(), firstLine(text), indent(lastLines(readFile(out), 12)))
	if code != st.WantExit {
		t.Errorf("%s:%d: %s\nexit %d, want %d; output:\n%s%s", s.doc, st.Line, shown, code, st.WantExit, readFile(out), s.backgroundLogs())
		return false
	}
	if st.background() {
		pid, _ := strconv.Atoi(r.fields[2])
		bg := docBackground{step: st, pid: pid, out: out}
		if strings.Contains(text, "gantry server") {
			bg.data = filepath.Join(r.fields[3], ".gantry")
			if m := regexp.MustCompile(`--data[ =](\S+)`).FindStringSubmatch(text); m != nil {
				bg.data = m[1]
				if !filepath.IsAbs(bg.data) {
					bg.data = filepath.Join(r.fields[3], bg.data)
				}
			}
		}
		s.bg = append(s.bg, bg)
		if first != "" {
			if err := waitListening(first, 60*time.Second); err != nil {
				t.Errorf("%s:%d: %s\nnothing listens on %s: %v; output:\n%s", s.doc, st.Line, shown, first, err, readFile(out))
				return false
			}
		}
	}
	return true
}

// docStepTimeout bounds one command; a build and a blue-green deploy of
// the sample app take a few seconds.
var docStepTimeout = 90 * time.Second

// close ends the shell, terminates what the document left running and
// stops the app instances of its servers.
func (s *docSession) close() {
	t := s.t
	s.stdin.Close()
	waited := make(chan struct{})
	go func() { s.sh.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		syscall.Kill(-s.sh.Process.Pid, syscall.SIGKILL)
		<-waited
	}
	for _, bg := range s.bg {
		if bg.pid <= 0 {
			continue
		}
		syscall.Kill(bg.pid, syscall.SIGTERM)
		deadline := time.Now().Add(30 * time.Second)
		for syscall.Kill(bg.pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Errorf("%s:%d: pid %d still running 30s after SIGTERM: killed", s.doc, bg.step.Line, bg.pid)
				syscall.Kill(bg.pid, syscall.SIGKILL)
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, bg := range s.bg {
		if bg.data == "" {
			continue
		}
		srv := &Server{DataDir: bg.data, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Logger: newLogger(io.Discard, "text"), DockerHost: s.dockerHost,
			SecretsKey: filepath.Join(filepath.Dir(s.dir), "home", ".config", "gantry", "secrets.key")}
		if err := srv.Open(context.Background()); err != nil {
			t.Errorf("cleanup: open %s to stop the app's instances: %v", bg.data, err)
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := srv.Orchestrator.StopAll(ctx); err != nil {
			t.Errorf("cleanup: stop the instances of %s: %v", bg.data, err)
		}
		cancel()
		srv.Close()
	}
}

// backgroundLogs is the end of the output of the processes left in the
// background (a server's log), for a failure message.
func (s *docSession) backgroundLogs() string {
	var b strings.Builder
	for _, bg := range s.bg {
		fmt.Fprintf(&b, "\n--- output of %s:%d (%s), last 40 lines:\n", s.doc, bg.step.Line, firstLine(bg.step.Text))
		b.WriteString(lastLines(readFile(bg.out), 40))
	}
	return b.String()
}

func waitListening(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readFile(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no output: %v)\n", err)
	}
	return string(b)
}

func lastLines(s string, n int) string {
	lines := strings.SplitAfter(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "")
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "\t| " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n\t| ")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
