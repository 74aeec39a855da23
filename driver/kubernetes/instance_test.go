package kubernetes_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/k8stest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestConcurrentStart: instances started one by one and at once (as the
// orchestrator does without SlotDriver) grow one Deployment, each instance
// a pod of its own.
func TestConcurrentStart(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-many")
	d := newDriver(t, c, ns)
	const n = 3
	insts := make([]gantry.Instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			spec := webSpec(imageV1, "rel-1").Spec
			spec.App, spec.Env, spec.Slot, spec.Index = "many", "test", "blue", i
			insts[i], errs[i] = d.Start(ctxFor(t), spec)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Start(%d): %v", i, err)
		}
	}
	dep, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "many-web-blue", metav1.GetOptions{})
	if err != nil || *dep.Spec.Replicas != n {
		t.Fatalf("Deployment after %d Starts: %v, replicas %v; want %d", n, err, dep.Spec.Replicas, n)
	}
	var addrs []string
	for _, inst := range insts {
		addrs = append(addrs, inst.Addr)
	}
	slices.Sort(addrs)
	if len(slices.Compact(slices.Clone(addrs))) != n || addrs[0] == "" {
		t.Errorf("instance addresses %v: want %d distinct pod addresses", addrs, n)
	}
	// Stopping the highest instance scales down by one.
	if err := d.Stop(ctxFor(t), insts[2], gantry.StopSpec{Signal: "SIGTERM"}); err != nil {
		t.Fatalf("Stop(2): %v", err)
	}
	if err := d.Attach(context.Background(), insts[2]); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Attach(2) after Stop: %v, want code %q", err, gantry.ENOTFOUND)
	}
	if err := d.Attach(context.Background(), insts[1]); err != nil {
		t.Errorf("Attach(1) after Stop(2): %v", err)
	}
	if err := d.Stop(ctxFor(t), insts[0], gantry.StopSpec{Signal: "SIGTERM"}); err != nil {
		t.Fatalf("Stop(0): %v", err)
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "many-web-blue", metav1.GetOptions{}); err == nil {
		t.Error("the Deployment survived Stop of instance 0")
	}
	if _, err := c.Client.CoreV1().Secrets(ns).Get(context.Background(), "many-web-blue-env", metav1.GetOptions{}); err == nil {
		t.Error("the variables' Secret survived Stop of instance 0")
	}
}

// TestVariablesInSecret: values live in the Secret only; a changed value
// rolls the pods, a dropped variable disappears.
func TestVariablesInSecret(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-vars")
	d := newDriver(t, c, ns)
	s := webSpec(imageV1, "rel-1")
	MustStartSlot(t, d, slot("vars", "test", "blue", "rel-1", s))
	sec, err := c.Client.CoreV1().Secrets(ns).Get(context.Background(), "vars-web-blue-env", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{"DATABASE_URL": "postgres://secret@db/shop", "PORT": "8080", "GANTRY_SLOT": "blue", "GANTRY_RELEASE": "rel-1"} {
		if got := string(sec.Data[k]); got != want {
			t.Errorf("Secret %s=%q, want %q", k, got, want)
		}
	}
	before, _ := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "vars-web-blue", metav1.GetOptions{})

	s.Spec.Vars = map[string]string{"DATABASE_URL": "postgres://other@db/shop"}
	MustStartSlot(t, d, slot("vars", "test", "blue", "rel-1", s))
	sec, err = c.Client.CoreV1().Secrets(ns).Get(context.Background(), "vars-web-blue-env", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sec.Data["LOG_LEVEL"]; ok {
		t.Error("a dropped variable is still in the Secret")
	}
	after, _ := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "vars-web-blue", metav1.GetOptions{})
	if after.Generation == before.Generation {
		t.Error("a changed variable did not roll the pods (same generation)")
	}
	if after.Status.UpdatedReplicas != 2 || after.Status.AvailableReplicas != 2 {
		t.Errorf("after the update: %d updated, %d available; want 2 and 2", after.Status.UpdatedReplicas, after.Status.AvailableReplicas)
	}
}

// TestInPlaceUpdateKeepsCapacity: starting the active slot again with a new
// release (the "restart" strategy) rolls it in place; when the new release
// never becomes ready, every old replica still serves (maxUnavailable 0).
func TestInPlaceUpdateKeepsCapacity(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-inplace")
	d := newDriver(t, c, ns)
	d.ProgressDeadline = 5 * time.Second
	blue := gantry.SlotRef{App: "ip", Env: "test", Slot: gantry.SlotBlue}
	// Four replicas: Kubernetes' default 25% maxUnavailable would take one
	// down; with two it would round to zero and hide the difference.
	v1, v2, bad := webSpec(imageV1, "rel-1"), webSpec(imageV2, "rel-2"), webSpec(k8stest.NeverReadyImage, "rel-bad")
	v1.Instances, v2.Instances, bad.Instances = 4, 4, 4
	MustStartSlot(t, d, slot("ip", "test", "blue", "rel-1", v1))
	MustSwitch(t, d, blue)

	MustStartSlot(t, d, slot("ip", "test", "blue", "rel-2", v2))
	if got := selectorSlot(t, c, ns, "ip-web"); got != "blue" {
		t.Errorf("live Service selects %q after an in-place update, want blue", got)
	}
	v2IPs := podIPs(t, c, ns, "ip", "web", "blue")
	if len(v2IPs) != 4 {
		t.Fatalf("after the in-place update %d pods, want 4 (old ones gone)", len(v2IPs))
	}
	waitEndpoints(t, c, ns, "ip-web", v2IPs)

	if _, err := d.StartSlot(ctxFor(t), slot("ip", "test", "blue", "rel-bad", bad)); gantry.ErrorCode(err) != gantry.EFAILED {
		t.Fatalf("in-place update to a never-ready release: %v, want code %q", err, gantry.EFAILED)
	}
	dep, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "ip-web-blue", metav1.GetOptions{})
	if err != nil || dep.Status.AvailableReplicas != 4 {
		t.Errorf("after a failed in-place update: %v, %d available replicas; want all 4 old ones", err, dep.Status.AvailableReplicas)
	}
	if got, err := endpointIPs(c, ns, "ip-web"); err != nil || !slices.Equal(got, v2IPs) {
		t.Errorf("after a failed in-place update the live endpoints are %v (%v), want %v", got, err, v2IPs)
	}

	// A slot that runs nothing is refused for a switch: never a switch to nothing.
	green := gantry.SlotRef{App: "ip", Env: "test", Slot: gantry.SlotGreen}
	if err := d.Switch(ctxFor(t), green); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Switch to an empty slot: %v, want code %q", err, gantry.ENOTFOUND)
	}
	if got := selectorSlot(t, c, ns, "ip-web"); got != "blue" {
		t.Errorf("a refused switch moved the live Service to %q", got)
	}
}
