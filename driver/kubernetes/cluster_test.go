package kubernetes_test

import (
	"context"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/kubernetes"
	"github.com/gantry-dev/gantry/internal/drivertest"
	"github.com/gantry-dev/gantry/internal/k8stest"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var cluster *k8stest.Cluster

func TestMain(m *testing.M) { os.Exit(k8stest.Main(m, &cluster)) }

// Images by digest; kwok runs any image, except the k8stest failure ones.
const (
	imageV1 = "registry.test/shop/web@sha256:1111111111111111111111111111111111111111111111111111111111111111"
	imageV2 = "registry.test/shop/web@sha256:2222222222222222222222222222222222222222222222222222222222222222"
)

// waitTimeout bounds every wait on the cluster: generous, the machine is
// shared; a passing run needs a small fraction of it.
const waitTimeout = 90 * time.Second

// newDriver returns a driver on its own client (as after a restart of the
// server) whose environments all live in ns.
func newDriver(t *testing.T, c *k8stest.Cluster, ns string) *kubernetes.Driver {
	t.Helper()
	client, err := kubernetes.NewClient(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &kubernetes.Driver{
		Client:    client,
		Namespace: ns,
		Logger:    slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

func webSpec(image, release string) gantry.SlotServiceSpec {
	return gantry.SlotServiceSpec{
		Spec: gantry.InstanceSpec{
			Service:   "web",
			ReleaseID: release,
			Artifact:  gantry.Artifact{Kind: gantry.ArtifactImage, Image: image, Digest: image[strings.Index(image, "@")+1:]},
			Port:      8080,
			Health:    gantry.HealthCheck{Path: "/up", Interval: time.Second, Timeout: 2 * time.Second, HealthyAfter: 1},
			Stop:      gantry.StopSpec{Signal: "SIGTERM", Timeout: 5 * time.Second},
			Vars:      map[string]string{"LOG_LEVEL": "debug", "DATABASE_URL": "postgres://secret@db/shop"},
		},
		Instances: 2,
		HTTP:      true,
	}
}

func workerSpec(image, release string) gantry.SlotServiceSpec {
	s := webSpec(image, release)
	s.Spec.Service, s.Spec.Port, s.Spec.Health, s.Instances, s.HTTP = "worker", 0, gantry.HealthCheck{}, 1, false
	return s
}

func slot(app, env, name, release string, svcs ...gantry.SlotServiceSpec) gantry.SlotSpec {
	return gantry.SlotSpec{SlotRef: gantry.SlotRef{App: app, Env: env, Slot: name}, ReleaseID: release, Services: svcs}
}

// MustStartSlot starts a slot and fails the test if it does not roll out.
func MustStartSlot(tb testing.TB, d *kubernetes.Driver, s gantry.SlotSpec) []gantry.Instance {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	insts, err := d.StartSlot(ctx, s)
	if err != nil {
		tb.Fatalf("StartSlot(%s): %v", s.Slot, err)
	}
	return insts
}

// MustSwitch switches traffic to a slot and fails the test otherwise.
func MustSwitch(tb testing.TB, d *kubernetes.Driver, ref gantry.SlotRef) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := d.Switch(ctx, ref); err != nil {
		tb.Fatalf("Switch(%s): %v", ref.Slot, err)
	}
}

// selectorSlot is the slot a Service selects.
func selectorSlot(t *testing.T, c *k8stest.Cluster, ns, name string) string {
	t.Helper()
	svc, err := c.Client.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get service %s: %v", name, err)
	}
	return svc.Spec.Selector[kubernetes.LabelSlot]
}

// podIPs are the IPs of a slot's pods of one service.
func podIPs(t *testing.T, c *k8stest.Cluster, ns, app, service, slotName string) []string {
	t.Helper()
	pods, err := c.Client.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: kubernetes.LabelApp + "=" + app + "," + kubernetes.LabelService + "=" + service + "," + kubernetes.LabelSlot + "=" + slotName,
	})
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && p.Status.PodIP != "" {
			ips = append(ips, p.Status.PodIP)
		}
	}
	slices.Sort(ips)
	return ips
}

// endpointIPs are the ready addresses the EndpointSlices of a Service hold.
func endpointIPs(c *k8stest.Cluster, ns, service string) ([]string, error) {
	list, err := c.Client.DiscoveryV1().EndpointSlices(ns).List(context.Background(), metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + service,
	})
	if err != nil {
		return nil, err
	}
	var ips []string
	for _, s := range list.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready != nil && *ep.Conditions.Ready {
				ips = append(ips, ep.Addresses...)
			}
		}
	}
	slices.Sort(ips)
	return ips, nil
}

// waitEndpoints waits until the Service's EndpointSlices hold exactly
// want, and returns how long that took.
func waitEndpoints(t *testing.T, c *k8stest.Cluster, ns, service string, want []string) time.Duration {
	t.Helper()
	begin := time.Now()
	var got []string
	var err error
	if !drivertest.WaitFor(waitTimeout, func() bool {
		got, err = endpointIPs(c, ns, service)
		return err == nil && slices.Equal(got, want)
	}) {
		t.Fatalf("endpoints of service %s: got %v (error %v), want %v", service, got, err, want)
	}
	return time.Since(begin)
}

func TestDriverSuite(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "suite-test")
	d := newDriver(t, c, ns)
	drivertest.Run(t, drivertest.Harness{
		Driver:    d,
		NoTraffic: true,
		Spec: func(t *testing.T, slotName, service string, index, port int) gantry.InstanceSpec {
			s := webSpec(imageV1, "rel-1").Spec
			s.App, s.Env, s.Slot, s.Service, s.Index, s.Port = "suite", "test", slotName, service, index, port
			return s
		},
		Restart: func(t *testing.T) gantry.Driver { return newDriver(t, c, ns) },
	})
}

func TestBlueGreenSwitchAndRollback(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-bg")
	d := newDriver(t, c, ns)
	blue := gantry.SlotRef{App: "shop", Env: "bg", Slot: gantry.SlotBlue}
	green := gantry.SlotRef{App: "shop", Env: "bg", Slot: gantry.SlotGreen}

	insts := MustStartSlot(t, d, slot("shop", "bg", "blue", "rel-1", webSpec(imageV1, "rel-1"), workerSpec(imageV1, "rel-1")))
	if got := len(insts); got != 3 {
		t.Fatalf("StartSlot returned %d instances, want 3 (2 web, 1 worker)", got)
	}
	for _, inst := range insts {
		if inst.Handle == "" || (inst.Service == "web" && inst.Addr == "") {
			t.Errorf("instance %+v lacks a handle or an address", inst)
		}
	}
	dep, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "shop-web-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("the slot's Deployment is not named <app>-<service>-<slot>: %v", err)
	}
	wantLabels := map[string]string{
		kubernetes.LabelApp: "shop", kubernetes.LabelEnv: "bg", kubernetes.LabelSlot: "blue",
		kubernetes.LabelService: "web", kubernetes.LabelRelease: "rel-1", kubernetes.LabelManagedBy: "gantry",
	}
	if !maps.Equal(dep.Spec.Template.Labels, wantLabels) {
		t.Errorf("pod labels: got %v, want %v", dep.Spec.Template.Labels, wantLabels)
	}
	if got := dep.Spec.Template.Spec.Containers[0].Image; got != imageV1 {
		t.Errorf("image: got %q, want %q", got, imageV1)
	}
	if got := *dep.Spec.Replicas; got != 2 {
		t.Errorf("replicas: got %d, want 2", got)
	}
	if p := dep.Spec.Template.Spec.Containers[0].ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/up" {
		t.Errorf("readiness probe: got %+v, want an HTTP GET of /up", p)
	}
	if strings.Contains(dep.String(), "postgres://secret") {
		t.Error("a variable's value is in the Deployment; it belongs in the Secret")
	}

	// Nothing takes traffic before the first switch.
	if active, err := d.ActiveSlot(context.Background(), gantry.SlotRef{App: "shop", Env: "bg"}); err != nil || active != "" {
		t.Fatalf("ActiveSlot before any switch: %q, %v; want \"\", nil", active, err)
	}
	MustSwitch(t, d, blue)
	if got := selectorSlot(t, c, ns, "shop-web"); got != "blue" {
		t.Fatalf("live Service selects slot %q, want blue", got)
	}
	blueIPs := podIPs(t, c, ns, "shop", "web", "blue")
	waitEndpoints(t, c, ns, "shop-web", blueIPs)

	// The candidate rolls out beside the active slot; only the preview
	// Service selects it.
	MustStartSlot(t, d, slot("shop", "bg", "green", "rel-2", webSpec(imageV2, "rel-2"), workerSpec(imageV2, "rel-2")))
	if got := selectorSlot(t, c, ns, "shop-web"); got != "blue" {
		t.Errorf("after StartSlot(green) the live Service selects %q, want blue", got)
	}
	if got := selectorSlot(t, c, ns, "shop-web-preview"); got != "green" {
		t.Errorf("preview Service selects %q, want green", got)
	}
	greenIPs := podIPs(t, c, ns, "shop", "web", "green")
	waitEndpoints(t, c, ns, "shop-web-preview", greenIPs)

	MustSwitch(t, d, green)
	// The old release's workers stop at the switch (its web stays warm):
	// two sets of workers would take jobs side by side.
	replicas := func(name string) int32 {
		t.Helper()
		dep, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *dep.Spec.Replicas
	}
	if w, web := replicas("shop-worker-blue"), replicas("shop-web-blue"); w != 0 || web != 2 {
		t.Errorf("after the switch to green: blue's worker has %d replicas, its web %d; want 0 and 2 (warm)", w, web)
	}
	if w := replicas("shop-worker-green"); w != 1 {
		t.Errorf("after the switch to green: green's worker has %d replicas, want 1", w)
	}
	took := waitEndpoints(t, c, ns, "shop-web", greenIPs)
	t.Logf("EndpointSlices followed the switch to green in %s", took)
	if got := selectorSlot(t, c, ns, "shop-web-preview"); got != "blue" {
		t.Errorf("after the switch the preview Service selects %q, want blue", got)
	}

	// Keep-warm over: the standby is scaled to zero, its objects kept.
	if err := d.StopSlot(ctxFor(t), blue, false); err != nil {
		t.Fatalf("StopSlot(blue): %v", err)
	}
	dep, err = c.Client.AppsV1().Deployments(ns).Get(context.Background(), "shop-web-blue", metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 0 {
		t.Fatalf("standby after StopSlot: %v, replicas %v; want scaled to 0", err, dep.Spec.Replicas)
	}
	// Rollback scales the standby up first, then moves the selector back.
	MustSwitch(t, d, blue)
	dep, err = c.Client.AppsV1().Deployments(ns).Get(context.Background(), "shop-web-blue", metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != 2 || dep.Status.AvailableReplicas != 2 {
		t.Fatalf("after rollback: %v, replicas %v, available %d; want 2 and 2", err, dep.Spec.Replicas, dep.Status.AvailableReplicas)
	}
	if got := selectorSlot(t, c, ns, "shop-web"); got != "blue" {
		t.Errorf("after rollback the live Service selects %q, want blue", got)
	}
	if wb, wg := replicas("shop-worker-blue"), replicas("shop-worker-green"); wb != 1 || wg != 0 {
		t.Errorf("after rollback: blue's worker has %d replicas, green's %d; want 1 and 0", wb, wg)
	}
	waitEndpoints(t, c, ns, "shop-web", podIPs(t, c, ns, "shop", "web", "blue"))
	if active, _ := d.ActiveSlot(context.Background(), gantry.SlotRef{App: "shop", Env: "bg"}); active != "blue" {
		t.Errorf("ActiveSlot after rollback: %q, want blue", active)
	}

	// The active slot is never stopped.
	if err := d.StopSlot(ctxFor(t), blue, true); gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Errorf("StopSlot(active): error %v, want code %q", err, gantry.ECONFLICT)
	}
	if err := d.StopSlot(ctxFor(t), green, true); err != nil {
		t.Fatalf("StopSlot(green, remove): %v", err)
	}
	if list, _ := c.Client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{LabelSelector: kubernetes.LabelSlot + "=green"}); len(list.Items) != 0 {
		t.Errorf("after StopSlot(remove) %d green Deployments remain", len(list.Items))
	}
}
