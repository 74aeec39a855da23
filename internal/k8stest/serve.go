package k8stest

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// ServeImages are image references whose pods serve real HTTP, answered by
// the test that called Serve: kwok gives such a pod an IP and leaves it not
// Ready until the test listens on that IP. Four, so that a test can give
// each release its own behaviour (kwok's stages select pods by image).
var ServeImages = [4]string{
	"registry.invalid/gantry/serve@sha256:" + strings.Repeat("a", 64),
	"registry.invalid/gantry/serve@sha256:" + strings.Repeat("b", 64),
	"registry.invalid/gantry/serve@sha256:" + strings.Repeat("d", 64),
	"registry.invalid/gantry/serve@sha256:" + strings.Repeat("e", 64),
}

//go:embed serve_stages.yaml
var serveStages string

// servingAnnotation tells kwok (serve_stages.yaml) that a pod serves.
const servingAnnotation = "k8stest.gantry.dev/serving"

// podNets is how many /20 blocks of 10.244.0.0/16 clusters take their pod
// IPs from; the last block holds the fake node's IP (10.244.255.1).
const podNets = 15

// claimPodNet takes a block of pod IPs no other cluster on this host uses,
// by an exclusive lock on a file per block that the process holds while
// the cluster runs (the kernel drops it when the process ends, however).
func (c *Cluster) claimPodNet() (string, error) {
	for i := range podNets {
		path := filepath.Join(os.TempDir(), fmt.Sprintf("gantry-k8stest-podnet-%d.lock", i))
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return "", fmt.Errorf("pod network lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		c.netLock = f
		c.PodNet = fmt.Sprintf("10.244.%d.0/20", i*16)
		return c.PodNet, nil
	}
	return "", fmt.Errorf("pod network: all %d blocks of 10.244.0.0/16 are taken by other clusters on this host", podNets)
}

func (c *Cluster) releasePodNet() {
	if c.netLock != nil {
		c.netLock.Close()
		c.netLock = nil
	}
}

// Serve makes the pods of the ServeImages in namespace ns serve HTTP on
// their pod IPs, which the API server's service proxy (it refuses loopback
// addresses, not these) and Gantry's router then reach for real. For each
// such pod that gets an IP, the IP is added to the loopback interface, a
// server with handler(pod) listens on ip:port, and only then is the pod
// marked serving, which makes kwok turn it Ready: a pod takes traffic
// once it serves, as with a readiness probe. A pod that goes away stops
// being served. Everything Serve made is undone when the test ends.
//
// Adding addresses needs root: without it the test skips, unless
// GANTRY_INTEGRATION=1, when it fails.
func (c *Cluster) Serve(tb testing.TB, ns string, port int, handler func(pod *corev1.Pod) http.Handler) {
	tb.Helper()
	if os.Geteuid() != 0 {
		msg := "serving pod IPs needs root (ip addr add … dev lo)"
		if os.Getenv("GANTRY_INTEGRATION") == "1" {
			tb.Fatalf("GANTRY_INTEGRATION=1: %s", msg)
		}
		tb.Skip(msg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ps := &podServers{c: c, tb: tb, ns: ns, port: port, handler: handler, served: map[types.UID]*podServer{}, failed: map[types.UID]bool{}}
	done := make(chan struct{})
	go func() {
		defer close(done)
		ps.loop(ctx)
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
		ps.mu.Lock()
		defer ps.mu.Unlock()
		for uid, s := range ps.served {
			s.close()
			delete(ps.served, uid)
		}
	})
}

type podServers struct {
	c       *Cluster
	tb      testing.TB
	ns      string
	port    int
	handler func(*corev1.Pod) http.Handler

	mu     sync.Mutex
	served map[types.UID]*podServer
	failed map[types.UID]bool // pods whose serving failed, reported once
}

type podServer struct {
	ip  string
	srv *http.Server
}

// close stops the server and takes its address off the loopback interface.
func (s *podServer) close() {
	_ = s.srv.Close()
	_ = exec.Command("ip", "addr", "del", s.ip+"/32", "dev", "lo").Run()
}

// loop lists the namespace's pods until ctx ends: a pod is served as soon
// as it has an IP, so polling often keeps rollouts short.
func (ps *podServers) loop(ctx context.Context) {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	for {
		list, err := ps.c.Client.CoreV1().Pods(ps.ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			ps.sync(ctx, list.Items)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (ps *podServers) sync(ctx context.Context, pods []corev1.Pod) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var mine []*corev1.Pod
	live := map[types.UID]bool{}
	for i := range pods {
		pod := &pods[i]
		if len(pod.Spec.Containers) > 0 && slices.Contains(ServeImages[:], pod.Spec.Containers[0].Image) && pod.DeletionTimestamp == nil {
			mine = append(mine, pod)
			live[pod.UID] = true
		}
	}
	// Gone pods first: kwok may give a gone pod's IP to a new one.
	for uid, s := range ps.served {
		if !live[uid] {
			s.close()
			delete(ps.served, uid)
		}
	}
	for _, pod := range mine {
		if pod.Status.PodIP == "" || ps.served[pod.UID] != nil {
			continue
		}
		s, err := ps.serve(ctx, pod)
		if err != nil {
			// Once per pod: the next rounds try again, and would repeat it
			// every 25 ms.
			if !ps.failed[pod.UID] {
				ps.failed[pod.UID] = true
				ps.tb.Errorf("k8stest: serve pod %s/%s: %v%s", pod.Namespace, pod.Name, err, holders(err, pod.Status.PodIP, ps.port))
			}
			continue
		}
		ps.served[pod.UID] = s
	}
}

func (ps *podServers) serve(ctx context.Context, pod *corev1.Pod) (*podServer, error) {
	ip := pod.Status.PodIP
	// An address already there was left by a test process that was killed
	// before its cleanup: this cluster holds the block now, so it is ours.
	if out, err := exec.Command("ip", "addr", "add", ip+"/32", "dev", "lo").CombinedOutput(); err != nil && !alreadyAssigned(string(out)) {
		return nil, fmt.Errorf("ip addr add %s/32 dev lo: %v: %s", ip, err, strings.TrimSpace(string(out)))
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(ps.port)))
	if err != nil {
		_ = exec.Command("ip", "addr", "del", ip+"/32", "dev", "lo").Run()
		return nil, err
	}
	s := &podServer{ip: ip, srv: &http.Server{Handler: ps.handler(pod.DeepCopy()), ReadHeaderTimeout: 10 * time.Second}}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			ps.tb.Logf("k8stest: server of pod %s: %v", pod.Name, err)
		}
	}()
	patch := []byte(`{"metadata":{"annotations":{"` + servingAnnotation + `":"true"}}}`)
	if _, err := ps.c.Client.CoreV1().Pods(pod.Namespace).Patch(ctx, pod.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		s.close()
		return nil, fmt.Errorf("mark serving: %w", err)
	}
	return s, nil
}

// holders says, for an address in use, which sockets listen on ip:port or
// on its port on every address (ss(8)), so that a failure names what held
// the address.
func holders(err error, ip string, port int) string {
	if !errors.Is(err, syscall.EADDRINUSE) {
		return ""
	}
	out, _ := exec.Command("ss", "-Htlnp", fmt.Sprintf("sport = :%d", port)).CombinedOutput()
	return fmt.Sprintf("; %s:%d is taken; listening on port %d (ss -Htlnp):\n%s", ip, port, port, strings.TrimSpace(string(out)))
}

// alreadyAssigned says ip(8) refused an address that is already there
// (the words differ between versions of iproute2).
func alreadyAssigned(out string) bool {
	return strings.Contains(out, "File exists") || strings.Contains(out, "already assigned")
}
