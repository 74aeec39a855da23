package kubernetes_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/clitest"
	"github.com/gantry-dev/gantry/internal/k8stest"
	"github.com/gantry-dev/gantry/sqlite"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var cluster *k8stest.Cluster

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &cluster)) }

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// testManifest is the app of the blue-green test: test on the cluster.
func testManifest(ns string) string {
	return `app: shop
services:
  web:
    docker: {dockerfile: Dockerfile}
    run: /web
    instances: 2
    health: {path: /up}
environments:
  test:
    hosts: [test.shop.localhost]
    runtime: {driver: kubernetes, namespace: ` + ns + `}
    keep_warm: 10m
`
}

// liveSlot is the slot the live Service shop-web of ns selects.
func liveSlot(t *testing.T, c *k8stest.Cluster, ns string) string {
	t.Helper()
	svc, err := c.Client.CoreV1().Services(ns).Get(context.Background(), "shop-web", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the live Service: %v", err)
	}
	return svc.Spec.Selector["gantry.dev/slot"]
}

func replicas(t *testing.T, c *k8stest.Cluster, ns, slot string) int32 {
	t.Helper()
	d, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "shop-web-"+slot, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment of slot %s: %v", slot, err)
	}
	return *d.Spec.Replicas
}

// liveImage is the image of the Deployment the live Service shop-web of ns
// selects.
func liveImage(t *testing.T, c *k8stest.Cluster, ns string) string {
	t.Helper()
	slot := liveSlot(t, c, ns)
	d, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "shop-web-"+slot, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("Deployment of the live slot %s: %v", slot, err)
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

// seed records an app and its image releases in a state directory, as an
// outside CI's import would: the images exist only by digest (the cluster's
// fake nodes run any image); extra adds further artifacts to a version's
// release (its migrations).
func seed(t *testing.T, data, manifestText string, images map[string]string, extra map[string]map[string]gantry.Artifact) {
	t.Helper()
	ctx := context.Background()
	os.MkdirAll(data, 0o755)
	db, err := sqlite.Open(ctx, filepath.Join(data, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop", Repo: "/nonexistent"}); err != nil {
		t.Fatal(err)
	}
	manifest := []byte(manifestText)
	sum := sha256.Sum256(manifest)
	for version, image := range images {
		rel := &gantry.Release{ID: version, App: "shop", Version: version, Commit: strings.Repeat("a", 40), Manifest: manifest,
			ManifestDigest: "sha256:" + hex.EncodeToString(sum[:]), Builder: "ci",
			Artifacts: map[string]gantry.Artifact{"web": {Kind: gantry.ArtifactImage, Image: image, Digest: image[strings.Index(image, "@")+1:]}}}
		maps.Copy(rel.Artifacts, extra[version])
		if err := db.CreateRelease(ctx, rel); err != nil {
			t.Fatal(err)
		}
	}
}

// gantryServer is the real binary serving a state directory against the
// test cluster, and its CLI.
type gantryServer struct {
	t               *testing.T
	c               *k8stest.Cluster
	bin, work, data string
	api, router     string
	server          *exec.Cmd
}

// newServer builds the binary, seeds its state with the manifest's
// releases and starts the server; it stops when the test ends.
func newServer(t *testing.T, c *k8stest.Cluster, manifestText string, images map[string]string) *gantryServer {
	t.Helper()
	return newServerWith(t, c, manifestText, images, nil)
}

// newServerWith is newServer whose releases also carry the artifacts
// extra puts in the server's state directory (data), per version.
func newServerWith(t *testing.T, c *k8stest.Cluster, manifestText string, images map[string]string, extra func(data string) map[string]map[string]gantry.Artifact) *gantryServer {
	t.Helper()
	work := t.TempDir()
	g := &gantryServer{t: t, c: c, work: work, bin: filepath.Join(work, "gantry"), data: filepath.Join(work, "state"), api: freeAddr(t), router: freeAddr(t)}
	if out, err := exec.Command("go", "build", "-o", g.bin, "../../cmd/gantry").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var arts map[string]map[string]gantry.Artifact
	if extra != nil {
		arts = extra(g.data)
	}
	seed(t, g.data, manifestText, images, arts)
	g.start()
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(work, "server.log"))
			t.Logf("server log:\n%s", b)
		}
	})
	return g
}

func (g *gantryServer) start() {
	t := g.t
	g.server = exec.Command(g.bin, "server", "--data", g.data, "--listen", g.api, "--router", g.router, "--kubeconfig", g.c.Kubeconfig, "--kubernetes-progress-deadline", "15s",
		"--secrets-key", filepath.Join(g.work, "secrets.key"), "--log-format", "text")
	logf, _ := os.OpenFile(filepath.Join(g.work, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	g.server.Stdout, g.server.Stderr = logf, logf
	if err := g.server.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(g.data, "gantry.sock")); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("server socket did not appear")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop interrupts the server and kills it if it has not exited after 30s
// (a test that hangs says nothing; a killed server fails it with its log).
func (g *gantryServer) stop() {
	g.server.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { g.server.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		g.t.Error("the server did not stop within 30s of an interrupt: killed")
		g.server.Process.Kill()
		<-done
	}
	os.Remove(filepath.Join(g.data, "gantry.sock"))
}

// cli runs a gantry command and fails the test unless it exits want.
func (g *gantryServer) cli(want int, args ...string) string {
	g.t.Helper()
	return g.run(nil, want, args...)
}

// stdin runs a gantry command with input on stdin (secret set).
func (g *gantryServer) stdin(input string, want int, args ...string) {
	g.t.Helper()
	g.run(strings.NewReader(input), want, args...)
}

func (g *gantryServer) run(stdin io.Reader, want int, args ...string) string {
	t := g.t
	t.Helper()
	// Bounded: a command that hangs fails the test with the server's log.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, g.bin, args...)
	cmd.Env = append(os.Environ(), "GANTRY_SERVER=unix://"+filepath.Join(g.data, "gantry.sock"))
	cmd.Stdin = stdin
	out, err := cmd.CombinedOutput()
	code := clitest.ExitCode(t, err)
	if ctx.Err() != nil {
		// The server's goroutines, in its log, say where it waits.
		g.server.Process.Signal(syscall.SIGQUIT)
		time.Sleep(time.Second)
		t.Fatalf("gantry %s: no answer within 3 minutes (the server's goroutines are at the end of its log)\n%s", strings.Join(args, " "), out)
	}
	if code != want {
		t.Fatalf("gantry %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, out)
	}
	return string(out)
}

// TestBlueGreenOnKubernetes drives the gantry binary against a real
// control plane: a deploy rolls out a slot's Deployment and points the
// Service at it; a second deploy goes to the other slot and switches the
// selector; a rollback switches it back without a new rollout; a rollout
// that never becomes ready leaves the active slot serving; a restarted
// server re-attaches and recreates nothing.
func TestBlueGreenOnKubernetes(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop")
	g := newServer(t, c, testManifest(ns), map[string]string{
		"1.0.0": "registry.example/shop/web@sha256:" + strings.Repeat("1", 64),
		"1.1.0": "registry.example/shop/web@sha256:" + strings.Repeat("2", 64),
		"1.2.0": k8stest.NeverReadyImage,
	})
	cli := g.cli
	ctx := context.Background()
	uid := func(slot string) string {
		t.Helper()
		d, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "shop-web-"+slot, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("Deployment of slot %s: %v", slot, err)
		}
		return string(d.UID)
	}

	cli(0, "deploy", "test", "--release", "1.0.0")
	if got := liveSlot(t, c, ns); got != "blue" {
		t.Fatalf("after the first deploy the Service selects slot %q, want blue", got)
	}
	cli(0, "deploy", "test", "--release", "1.1.0")
	if got := liveSlot(t, c, ns); got != "green" {
		t.Fatalf("after the second deploy the Service selects slot %q, want green", got)
	}
	blue, green := uid("blue"), uid("green")
	out := cli(0, "rollback", "test")
	if got := liveSlot(t, c, ns); got != "blue" {
		t.Fatalf("after the rollback the Service selects slot %q, want blue", got)
	}
	if !strings.Contains(out, "warm slot") {
		t.Errorf("rollback was not a switch to the warm slot:\n%s", out)
	}
	// A rollout that never becomes ready fails, and blue keeps the traffic.
	out = cli(1, "deploy", "test", "--release", "1.2.0")
	if got := liveSlot(t, c, ns); got != "blue" {
		t.Fatalf("after a failed rollout the Service selects slot %q, want blue\n%s", got, out)
	}
	// A restarted server re-attaches: the same objects, the same active slot.
	g.stop()
	g.start()
	status := cli(0, "status", "test")
	if !strings.Contains(status, "1.0.0") || !strings.Contains(status, "active") {
		t.Errorf("status after the restart:\n%s", status)
	}
	if uid("blue") != blue {
		t.Error("the blue Deployment was recreated after the restart")
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "shop-web-green", metav1.GetOptions{}); err != nil {
		t.Errorf("the green Deployment is gone: %v", err)
	}
	if uid("green") != green {
		t.Error("the green Deployment was recreated after the restart")
	}
}
