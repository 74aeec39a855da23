package k8stest

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"
)

const (
	startTimeout = 2 * time.Minute // generous: two cores shared with other builds
	stopTimeout  = 10 * time.Second
)

// proc is one process of the cluster.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{} // closed when Wait returned
	err  error
}

// spawn starts bin/name with args, its output to logs/name.log.
func (c *Cluster) spawn(bin, name string, args ...string) error {
	logs := filepath.Join(c.Dir, "logs")
	if err := os.MkdirAll(logs, 0o700); err != nil {
		return err
	}
	logPath := filepath.Join(logs, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Stdout, cmd.Stderr = f, f
	// A test binary killed by its timeout must not leave a cluster behind:
	// the kernel kills the children when the parent dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	c.procs = append(c.procs, p)
	return nil
}

// checkAlive reports a process that exited during start-up, with its log.
func (c *Cluster) checkAlive() error {
	for _, p := range c.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%s exited: %v; log: %s", p.name, p.err, c.logTail(p.name))
		default:
		}
	}
	return nil
}

// logTail is the end of a process's log, for error messages.
func (c *Cluster) logTail(name string) string {
	b, err := os.ReadFile(filepath.Join(c.Dir, "logs", name+".log"))
	if err != nil {
		return "(no log)"
	}
	const n = 1500
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Stop stops the processes it started, by PID, in reverse order: etcd
// last, because the API server may hang on SIGTERM once etcd is gone.
// What does not exit within stopTimeout is killed. The working directory
// is removed unless GANTRY_K8STEST_KEEP=1.
func (c *Cluster) Stop() {
	for _, p := range slices.Backward(c.procs) {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			fmt.Fprintf(os.Stderr, "k8stest: %s (pid %d) ignored SIGTERM, killing\n", p.name, p.cmd.Process.Pid)
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	c.procs = nil
	c.releasePodNet()
	if os.Getenv("GANTRY_K8STEST_KEEP") == "1" {
		fmt.Fprintf(os.Stderr, "k8stest: kept %s\n", c.Dir)
		return
	}
	_ = os.RemoveAll(c.Dir)
}

// freePorts returns n loopback ports that were free a moment ago, all
// held at once so they differ.
func freePorts(n int) ([]int, error) {
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeKubeconfig(path string, port int, ca []byte) error {
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: k8stest
  cluster:
    server: https://127.0.0.1:%d
    certificate-authority-data: %s
users:
- name: admin
  user:
    token: %s
contexts:
- name: k8stest
  context: {cluster: k8stest, user: admin}
current-context: k8stest
`, port, base64.StdEncoding.EncodeToString(ca), token)
	return os.WriteFile(path, []byte(cfg), 0o600)
}
