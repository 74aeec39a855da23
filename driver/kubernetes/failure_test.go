package kubernetes_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/k8stest"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// activeBlue starts rel-1 on blue and switches to it, for tests of what a
// later deployment must not disturb.
func activeBlue(t *testing.T, c *k8stest.Cluster, ns, app string) []string {
	t.Helper()
	d := newDriver(t, c, ns)
	MustStartSlot(t, d, slot(app, "prod", "blue", "rel-1", webSpec(imageV1, "rel-1")))
	MustSwitch(t, d, gantry.SlotRef{App: app, Env: "prod", Slot: "blue"})
	ips := podIPs(t, c, ns, app, "web", "blue")
	waitEndpoints(t, c, ns, app+"-web", ips)
	return ips
}

// checkUntouched fails unless blue still takes all the traffic.
func checkUntouched(t *testing.T, c *k8stest.Cluster, ns, app string, blueIPs []string) {
	t.Helper()
	if got := selectorSlot(t, c, ns, app+"-web"); got != "blue" {
		t.Errorf("after a failed rollout the live Service selects %q, want blue", got)
	}
	if got, err := endpointIPs(c, ns, app+"-web"); err != nil || strings.Join(got, ",") != strings.Join(blueIPs, ",") {
		t.Errorf("after a failed rollout the live endpoints are %v (%v), want blue's %v", got, err, blueIPs)
	}
	dep, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), app+"-web-blue", metav1.GetOptions{})
	if err != nil || dep.Status.AvailableReplicas != 2 || dep.Spec.Template.Spec.Containers[0].Image != imageV1 {
		t.Errorf("after a failed rollout the active Deployment changed: %v", err)
	}
}

func TestReadinessNeverPasses(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-never-ready")
	blueIPs := activeBlue(t, c, ns, "nr")

	d := newDriver(t, c, ns)
	d.ProgressDeadline = 5 * time.Second // the controller's own deadline, not a test timeout
	begin := time.Now()
	_, err := d.StartSlot(ctxFor(t), slot("nr", "prod", "green", "rel-bad", webSpec(k8stest.NeverReadyImage, "rel-bad")))
	if err == nil {
		t.Fatal("StartSlot of a release whose readiness never passes succeeded")
	}
	t.Logf("failed after %s: %v", time.Since(begin), err)
	if code := gantry.ErrorCode(err); code != gantry.EFAILED {
		t.Errorf("error code %q, want %q", code, gantry.EFAILED)
	}
	for _, want := range []string{"progress deadline", "not ready", "Readiness probe failed"} {
		if !strings.Contains(gantry.ErrorMessage(err), want) {
			t.Errorf("failure message lacks %q: %s", want, gantry.ErrorMessage(err))
		}
	}
	checkUntouched(t, c, ns, "nr", blueIPs)
}

// TestStuckPodsFailFast: pods that will not heal end the rollout at once,
// long before the progress deadline, and say why.
func TestStuckPodsFailFast(t *testing.T) {
	c := k8stest.Need(t, cluster)
	for _, tt := range []struct {
		name, image string
		want        []string
	}{
		{"pull", k8stest.PullFailImage, []string{"ErrImagePull", "manifest unknown", "event Failed: Failed to pull image"}},
		{"crash", k8stest.CrashLoopImage, []string{"CrashLoopBackOff", "after 3 restarts", "event BackOff: Back-off restarting failed container"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ns := c.Namespace(t, "shop-stuck-"+tt.name)
			blueIPs := activeBlue(t, c, ns, tt.name)
			d := newDriver(t, c, ns)
			d.ProgressDeadline = 10 * time.Minute
			_, err := d.StartSlot(ctxFor(t), slot(tt.name, "prod", "green", "rel-bad", webSpec(tt.image, "rel-bad")))
			if err == nil {
				t.Fatal("StartSlot of a release whose pods are stuck succeeded")
			}
			t.Logf("failed: %v", err)
			if code := gantry.ErrorCode(err); code != gantry.EFAILED {
				t.Errorf("error code %q, want %q", code, gantry.EFAILED)
			}
			for _, want := range tt.want {
				if !strings.Contains(gantry.ErrorMessage(err), want) {
					t.Errorf("failure message lacks %q: %s", want, gantry.ErrorMessage(err))
				}
			}
			checkUntouched(t, c, ns, tt.name, blueIPs)
		})
	}
}

func TestBadImageReference(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-badref")
	blueIPs := activeBlue(t, c, ns, "ref")
	d := newDriver(t, c, ns)
	for _, image := range []string{
		"registry.test/shop/web:latest",     // a tag may move: never by tag
		"registry.test/shop/web@sha256:abc", // not a digest
		"registry.test/shop/web@sha256:" + strings.Repeat("G", 64),
		"",
	} {
		spec := webSpec(imageV2, "rel-2")
		spec.Spec.Artifact = gantry.Artifact{Kind: gantry.ArtifactImage, Image: image}
		_, err := d.StartSlot(ctxFor(t), slot("ref", "prod", "green", "rel-2", spec))
		if code := gantry.ErrorCode(err); code != gantry.EINVALID {
			t.Errorf("image %q: error %v, want code %q", image, err, gantry.EINVALID)
		}
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "ref-web-green", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused image still created the candidate Deployment (error %v)", err)
	}
	checkUntouched(t, c, ns, "ref", blueIPs)
}

func TestReattachAfterRestart(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-restart")
	blueIPs := activeBlue(t, c, ns, "re")
	before, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "re-web-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	insts := MustStartSlot(t, newDriver(t, c, ns), slot("re", "prod", "blue", "rel-1", webSpec(imageV1, "rel-1")))

	// A new driver value over a new client: the server restarted.
	d2 := newDriver(t, c, ns)
	active, err := d2.ActiveSlot(context.Background(), gantry.SlotRef{App: "re", Env: "prod"})
	if err != nil || active != "blue" {
		t.Fatalf("ActiveSlot after restart: %q, %v; want blue", active, err)
	}
	for _, inst := range insts {
		if err := d2.Attach(context.Background(), inst); err != nil {
			t.Errorf("Attach(%s-%d) after restart: %v", inst.Service, inst.Index, err)
		}
		if st, err := d2.Inspect(context.Background(), inst); err != nil || st.State != gantry.InstanceRunning {
			t.Errorf("Inspect(%s-%d) after restart: %+v, %v; want running", inst.Service, inst.Index, st, err)
		}
	}
	after, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "re-web-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Re-running the same step (a recovered deployment) recreated nothing
	// and rolled nothing: same object, same template generation.
	if after.UID != before.UID || after.Generation != before.Generation {
		t.Errorf("Deployment after restart: uid %s generation %d, want uid %s generation %d", after.UID, after.Generation, before.UID, before.Generation)
	}
	if got := podIPs(t, c, ns, "re", "web", "blue"); strings.Join(got, ",") != strings.Join(blueIPs, ",") {
		t.Errorf("pods after restart: %v, want the same %v", got, blueIPs)
	}
	// A handle of a Deployment deleted and recreated meanwhile is gone.
	if err := d2.StopSlot(ctxFor(t), gantry.SlotRef{App: "re", Env: "prod", Slot: "green"}, true); err != nil {
		t.Errorf("StopSlot of an empty slot: %v", err)
	}
	stale := insts[0]
	stale.Handle = strings.Replace(stale.Handle, string(before.UID), "00000000-0000-0000-0000-000000000000", 1)
	if err := d2.Attach(context.Background(), stale); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Errorf("Attach with another Deployment's UID: %v, want code %q", err, gantry.ENOTFOUND)
	}
}
