// Package k8stest runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and kwok (fake
// nodes, so pods become Running and Ready without a kubelet or a container
// runtime). The binaries are built from the Go module proxy by
// scripts/k8s-cluster.sh into a cache directory, once, and reused by every
// later run; starting the cluster takes seconds.
// The API server also serves the CustomResourceDefinitions of crds/
// (OpenShift's Route and ImageStream, Gateway API's HTTPRoute), so the
// objects Gantry writes to those APIs are validated by a real API server.
//
// A test package uses it from TestMain:
//
//	var cluster *k8stest.Cluster
//
//	func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &cluster)) }
//
//	func TestX(t *testing.T) {
//		c := k8stest.Need(t, cluster) // skips when there is no cluster
//		…
//	}
//
// A test binary never builds the cluster: a cold build takes minutes (more
// on a busy machine) and would run under go test's timeout, which killed
// whole packages. scripts/test.sh builds it first, outside any timeout, with
// progress. When the binaries are not built the tests skip saying how to
// build them, unless GANTRY_INTEGRATION=1, in which case the package fails
// at once with the same words. A cluster that is built but does not start
// is treated the same way.
//
// It is for tests only: nothing in the gantry binary may import it. It starts
// processes and stops exactly those, by PID.
package k8stest

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8s "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Images that the cluster's kwok stages treat specially, so tests can show
// failing rollouts without a container runtime.
const (
	// NeverReadyImage's pods run but never pass their readiness probe, and
	// record a "Readiness probe failed" warning event.
	NeverReadyImage = "registry.invalid/gantry/never-ready@sha256:0000000000000000000000000000000000000000000000000000000000000000"
	// PullFailImage's pods stay Pending in ErrImagePull with a "Failed to
	// pull image" warning event.
	PullFailImage = "registry.invalid/gantry/no-such-image@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
	// CrashLoopImage's pods are in CrashLoopBackOff after 3 restarts (exit
	// code 1), with a "Back-off restarting failed container" warning event.
	CrashLoopImage = "registry.invalid/gantry/crash-loop@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
	// CopyFailImage's pods run, like any other's, except in a Job: there
	// the container exits 1 (phase Failed) with a "CopyFailed" warning
	// event, where other Jobs' pods complete.
	CopyFailImage = "registry.invalid/gantry/copy-fail@sha256:9999999999999999999999999999999999999999999999999999999999999999"
)

//go:embed stages.yaml
var gantryStages string

const token = "gantry-k8stest-admin"

// Cluster is a running control plane.
type Cluster struct {
	Dir        string // working directory: pki, kubeconfig, logs, etcd data
	Kubeconfig string
	Config     *rest.Config
	Client     k8s.Interface
	// PodNet is the block of 10.244.0.0/16 kwok gives this cluster's pods
	// their IPs from: one of its own, so that two clusters' pods, served
	// on this host by Serve, never share an address.
	PodNet string

	procs   []*proc
	netLock *os.File
}

// Main starts a cluster from the built binaries, runs the tests, and stops
// the cluster. *c is nil when there is no cluster; Need then skips.
func Main(m *testing.M, c **Cluster) int {
	cl, err := start()
	if err != nil {
		startErr = err
		if os.Getenv("GANTRY_INTEGRATION") == "1" {
			fmt.Fprintf(os.Stderr, "k8stest: GANTRY_INTEGRATION=1 and no kubernetes cluster: %v\n", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "k8stest: no kubernetes cluster, its tests skip: %v\n", err)
		return m.Run()
	}
	*c = cl
	code := m.Run()
	cl.Stop()
	return code
}

var (
	startErr error
	nsCount  atomic.Int64
)

// Need returns c, or skips the test when there is no cluster.
func Need(tb testing.TB, c *Cluster) *Cluster {
	tb.Helper()
	if c == nil {
		if startErr == nil {
			startErr = errors.New("k8stest.Main did not run")
		}
		tb.Skipf("no kubernetes cluster: %v", startErr)
	}
	return c
}

func start() (*Cluster, error) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	bin, err := Binaries(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "gantry-k8stest-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir}
	if err := c.run(bin); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// run starts the processes in dependency order and waits for each to be
// usable: the API server ready, the fake node Ready, the default service
// account created.
func (c *Cluster) run(bin string) error {
	begin := time.Now()
	p, err := writePKI(c.Dir)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	ports, err := freePorts(4)
	if err != nil {
		return err
	}
	etcdPort, peerPort, apiPort, kwokPort := ports[0], ports[1], ports[2], ports[3]
	tokens := filepath.Join(c.Dir, "pki", "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, apiPort, p.CAPEM); err != nil {
		return err
	}
	c.Config = &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", apiPort),
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: p.CAPEM},
		QPS:             200,
		Burst:           400,
	}
	if c.Client, err = k8s.NewForConfig(c.Config); err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", etcdPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	if err := c.spawn(bin, "etcd",
		"--name=k8stest", "--data-dir="+filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=k8stest="+peerURL, "--unsafe-no-fsync", "--log-level=warn",
	); err != nil {
		return err
	}
	if err := c.spawn(bin, "kube-apiserver",
		"--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", apiPort),
		"--advertise-address=192.0.2.10", "--tls-cert-file="+p.Cert, "--tls-private-key-file="+p.Key,
		"--client-ca-file="+p.CA, "--token-auth-file="+tokens, "--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc", "--service-account-key-file="+p.SAPub,
		"--service-account-signing-key-file="+p.SAKey, "--service-cluster-ip-range=10.96.0.0/16",
		"--cert-dir="+filepath.Join(c.Dir, "apiserver-certs"),
	); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := c.waitReady(ctx); err != nil {
		return err
	}
	if err := c.spawn(bin, "kube-controller-manager",
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
		"--service-account-private-key-file="+p.SAKey, "--root-ca-file="+p.CA,
		"--controllers=*,-nodeipam,-cloud-node-lifecycle,-service-lb-controller",
		// kwok renews the fake node's lease; on a loaded machine a renewal
		// can come late, and the node controller would then mark the
		// node and every pod on it not ready in the middle of a test.
		"--node-monitor-grace-period=1h",
	); err != nil {
		return err
	}
	if err := c.spawn(bin, "kube-scheduler",
		"--kubeconfig="+c.Kubeconfig, "--leader-elect=false", "--bind-address=127.0.0.1", "--secure-port=0",
	); err != nil {
		return err
	}
	podNet, err := c.claimPodNet()
	if err != nil {
		return err
	}
	stages, err := c.writeStages(bin)
	if err != nil {
		return err
	}
	if err := c.spawn(bin, "kwok",
		"--config="+stages, "--kubeconfig="+c.Kubeconfig, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--cidr="+podNet, "--node-ip=10.244.255.1", fmt.Sprintf("--server-address=127.0.0.1:%d", kwokPort),
	); err != nil {
		return err
	}
	if err := c.addNode(ctx); err != nil {
		return err
	}
	if err := c.waitServiceAccount(ctx, "default"); err != nil {
		return err
	}
	if err := c.installCRDs(ctx); err != nil {
		return fmt.Errorf("custom resource definitions: %w", err)
	}
	fmt.Fprintf(os.Stderr, "k8stest: cluster ready in %s (%s)\n", time.Since(begin).Round(10*time.Millisecond), c.Dir)
	return nil
}

// writeStages is kwok's configuration: the node and deletion stages built
// with the binaries, without kwok's pod-ready and pod-complete stages,
// which Gantry's own stages replace.
func (c *Cluster) writeStages(bin string) (string, error) {
	base, err := os.ReadFile(filepath.Join(bin, "kwok-stages.yaml"))
	if err != nil {
		return "", err
	}
	var keep []string
	for doc := range strings.SplitSeq("\n"+string(base), "\n---") {
		doc = strings.TrimSpace(doc)
		lines := strings.Split(doc, "\n")
		if doc == "" || slices.Contains(lines, "  name: pod-ready") || slices.Contains(lines, "  name: pod-complete") {
			continue
		}
		keep = append(keep, doc)
	}
	keep = append(keep, gantryStages, serveStages)
	path := filepath.Join(c.Dir, "kwok-stages.yaml")
	return path, os.WriteFile(path, []byte(strings.Join(keep, "\n---\n")), 0o600)
}

func (c *Cluster) waitReady(ctx context.Context) error {
	var last error
	for {
		body, err := c.Client.Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
		if err == nil && string(body) == "ok" {
			return nil
		}
		last = err
		if err := c.checkAlive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready: %v (log: %s)", last, c.logTail("kube-apiserver"))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// addNode registers the one fake node kwok manages.
func (c *Cluster) addNode(ctx context.Context) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        "kwok-node-0",
			Annotations: map[string]string{"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
			Labels:      map[string]string{"kubernetes.io/hostname": "kwok-node-0", "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "type": "kwok"},
		},
		Status: corev1.NodeStatus{Allocatable: capacity, Capacity: capacity},
	}
	if _, err := c.Client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create node: %w", err)
	}
	return c.poll(ctx, "node kwok-node-0 Ready", "kwok", func() bool {
		n, err := c.Client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	})
}

func (c *Cluster) waitServiceAccount(ctx context.Context, ns string) error {
	return c.poll(ctx, "service account "+ns+"/default", "kube-controller-manager", func() bool {
		_, err := c.Client.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil
	})
}

// poll waits for cond during start-up, failing early when a process died.
func (c *Cluster) poll(ctx context.Context, what, logOf string, cond func() bool) error {
	for !cond() {
		if err := c.checkAlive(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %v (log of %s: %s)", what, ctx.Err(), logOf, c.logTail(logOf))
		case <-time.After(100 * time.Millisecond):
		}
	}
	return nil
}

// Namespace creates a namespace for one test, named prefix-N so that
// -count=N runs start afresh, and waits until pods can be created in it
// (its default service account exists). The cluster is thrown away after
// the run, so it is not deleted.
func (c *Cluster) Namespace(tb testing.TB, prefix string) string {
	tb.Helper()
	name := fmt.Sprintf("%s-%d", prefix, nsCount.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := c.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		tb.Fatalf("create namespace %s: %v", name, err)
	}
	if err := c.waitServiceAccount(ctx, name); err != nil {
		tb.Fatalf("namespace %s: %v", name, err)
	}
	return name
}
