package kubernetes_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/k8stest"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// modelSlot is a slot of an app of three services: web (with a persistent
// directory), api and a worker that shares web's directory.
func modelSlot(name, release string) gantry.SlotSpec {
	web := webSpec(imageV1, release)
	web.Spec.Persist = map[string]string{"uploads": "/var/lib/gantry/persist/uploads"}
	web.Spec.Vars = map[string]string{"GANTRY_PERSIST_UPLOADS": "/var/lib/gantry/persist/uploads"}
	api := webSpec(imageV1, release)
	api.Spec.Service, api.Instances = "api", 1
	worker := workerSpec(imageV1, release)
	worker.Spec.Persist = web.Spec.Persist
	return slot("model", "test", name, release, web, api, worker)
}

// providePV gives the test's claim a ReadWriteMany volume of storage
// class class and size size: the test cluster has no storage provisioner,
// and a pod whose claim stays unbound is never scheduled (the rollout then
// fails at its deadline, naming the unbound claim). Without a class the
// volume is bound to the claim in advance; a volume of a class is left for
// the API server to bind to a claim that asks for that class and at most
// that size, as a provisioner's would be.
func providePV(t *testing.T, c *k8stest.Cluster, ns, claim, class, size string) {
	t.Helper()
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: ns + "-" + claim},
		Spec: corev1.PersistentVolumeSpec{
			StorageClassName:       class,
			Capacity:               corev1.ResourceList{corev1.ResourceStorage: resource.MustParse(size)},
			AccessModes:            []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/" + ns}},
		},
	}
	if class == "" {
		pv.Spec.ClaimRef = &corev1.ObjectReference{Namespace: ns, Name: claim}
	}
	if _, err := c.Client.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().PersistentVolumes().Delete(context.Background(), pv.Name, metav1.DeleteOptions{})
	})
}

// secretVars reads the variables of one service in one slot.
func secretVars(t *testing.T, c *k8stest.Cluster, ns, service, slotName string) map[string]string {
	t.Helper()
	sec, err := c.Client.CoreV1().Secrets(ns).Get(context.Background(), "model-"+service+"-"+slotName+"-env", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range sec.Data {
		out[k] = string(v)
	}
	return out
}

// TestDiscoveryAndPersist: every pod of a slot is told the slot's own
// Service of each http sibling, before and after a switch; a persistent
// directory is one ReadWriteMany claim of the environment, mounted by the
// pods of both slots, kept when a slot's workloads are removed, deleted by
// a purge.
func TestDiscoveryAndPersist(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-model")
	d := newDriver(t, c, ns)
	ctx := ctxFor(t)
	providePV(t, c, ns, "model-persist-uploads", "", "1Gi")

	MustStartSlot(t, d, modelSlot("blue", "rel-1"))
	MustSwitch(t, d, gantry.SlotRef{App: "model", Env: "test", Slot: "blue"})
	MustStartSlot(t, d, modelSlot("green", "rel-2"))
	check := func(when string) {
		t.Helper()
		for _, s := range []string{"blue", "green"} {
			for _, svc := range []string{"web", "api", "worker"} {
				vars := secretVars(t, c, ns, svc, s)
				for k, want := range map[string]string{
					"GANTRY_SERVICE_API_URL":   "http://model-api-" + s + ":80",
					"GANTRY_SERVICE_API_ADDR":  "model-api-" + s + ":80",
					"GANTRY_SERVICE_WEB_ADDRS": "model-web-" + s + ":80",
				} {
					if vars[k] != want {
						t.Errorf("%s: %s of slot %s: %s=%q, want %q", when, svc, s, k, vars[k], want)
					}
				}
				if v, ok := vars["GANTRY_SERVICE_WORKER_URL"]; ok {
					t.Errorf("%s: a worker has an address: %q", when, v)
				}
			}
			for _, svc := range []string{"web", "api"} {
				if got := selectorSlot(t, c, ns, "model-"+svc+"-"+s); got != s {
					t.Errorf("%s: Service model-%s-%s selects slot %q", when, svc, s, got)
				}
			}
		}
	}
	check("before the switch")
	MustSwitch(t, d, gantry.SlotRef{App: "model", Env: "test", Slot: "green"})
	check("after the switch")

	claim, err := c.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "model-persist-uploads", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	if !slices.Equal(claim.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany}) {
		t.Errorf("claim access modes %v, want [ReadWriteMany]", claim.Spec.AccessModes)
	}
	for _, s := range []string{"blue", "green"} {
		for _, svc := range []string{"web", "worker"} {
			dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "model-"+svc+"-"+s, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pod := dep.Spec.Template.Spec
			if len(pod.Volumes) != 1 || pod.Volumes[0].PersistentVolumeClaim == nil || pod.Volumes[0].PersistentVolumeClaim.ClaimName != claim.Name {
				t.Errorf("%s: volumes %+v, want the claim %s", dep.Name, pod.Volumes, claim.Name)
			}
			m := pod.Containers[0].VolumeMounts
			if len(m) != 1 || m[0].MountPath != "/var/lib/gantry/persist/uploads" {
				t.Errorf("%s: mounts %+v, want /var/lib/gantry/persist/uploads", dep.Name, m)
			}
		}
	}
	if got := secretVars(t, c, ns, "web", "green")["GANTRY_PERSIST_UPLOADS"]; got != "/var/lib/gantry/persist/uploads" {
		t.Errorf("GANTRY_PERSIST_UPLOADS=%q", got)
	}

	// Removing the previous slot's workloads keeps the claim (its data).
	if err := d.StopSlot(ctx, gantry.SlotRef{App: "model", Env: "test", Slot: "blue"}, true); err != nil {
		t.Fatal(err)
	}
	after, err := c.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim.Name, metav1.GetOptions{})
	if err != nil || after.UID != claim.UID {
		t.Errorf("after removing slot blue: claim %v (uid %s, was %s)", err, after.UID, claim.UID)
	}
	if _, err := c.Client.CoreV1().Services(ns).Get(ctx, "model-api-blue", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("slot blue's Service of api after its removal: %v, want not found", err)
	}

	// gantry env delete --purge: the claim goes (once no pod mounts it,
	// by the API server's protection of claims in use).
	if err := d.PurgePersist(ctx, gantry.SlotRef{App: "model", Env: "test"}); err != nil {
		t.Fatal(err)
	}
	gone, err := c.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim.Name, metav1.GetOptions{})
	if err == nil && gone.DeletionTimestamp == nil {
		t.Errorf("after PurgePersist the claim is still there, not being deleted")
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
}

// TestPersistClaimClassAndSize: the environment's runtime.storage_class
// and runtime.persist_size are what the claim asks for, read back from the
// API server; the claim binds to the test's volume of that class, so the
// slot rolls out.
func TestPersistClaimClassAndSize(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-class")
	ctx := ctxFor(t)
	class := &storagev1.StorageClass{
		ObjectMeta:        metav1.ObjectMeta{Name: ns + "-rwx"},
		Provisioner:       "kubernetes.io/no-provisioner",
		VolumeBindingMode: new(storagev1.VolumeBindingImmediate),
	}
	if _, err := c.Client.StorageV1().StorageClasses().Create(ctx, class, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.StorageV1().StorageClasses().Delete(context.Background(), class.Name, metav1.DeleteOptions{})
	})
	providePV(t, c, ns, "model-persist-uploads", class.Name, "5Gi")

	d := newDriver(t, c, ns)
	d.ProgressDeadline = 20 * time.Second
	s := modelSlot("blue", "rel-1")
	s.Runtime.StorageClass, s.Runtime.PersistSize = class.Name, "5Gi"
	MustStartSlot(t, d, s)
	claim, err := c.Client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "model-persist-uploads", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := claim.Spec.StorageClassName; got == nil || *got != class.Name {
		t.Errorf("claim's storage class %v, want %s", got, class.Name)
	}
	if got := claim.Spec.Resources.Requests[corev1.ResourceStorage]; got.String() != "5Gi" {
		t.Errorf("claim asks for %s, want 5Gi", got.String())
	}
	if claim.Status.Phase != corev1.ClaimBound || claim.Spec.VolumeName != ns+"-model-persist-uploads" {
		t.Errorf("claim %s, volume %q: want bound to the volume of its class", claim.Status.Phase, claim.Spec.VolumeName)
	}
}

// TestDroppedServiceLeavesTheSlot: a release without the api, started in
// a slot that ran one, leaves no Deployment nor slot Service of the api
// there, so nothing still resolves GANTRY_SERVICE_API_URL's old name.
func TestDroppedServiceLeavesTheSlot(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-dropped")
	d := newDriver(t, c, ns)
	ctx := ctxFor(t)
	providePV(t, c, ns, "model-persist-uploads", "", "1Gi")
	MustStartSlot(t, d, modelSlot("blue", "rel-1"))
	MustSwitch(t, d, gantry.SlotRef{App: "model", Env: "test", Slot: "blue"})
	MustStartSlot(t, d, modelSlot("green", "rel-2"))
	MustSwitch(t, d, gantry.SlotRef{App: "model", Env: "test", Slot: "green"})

	s := modelSlot("blue", "rel-3")
	s.Services = slices.DeleteFunc(s.Services, func(x gantry.SlotServiceSpec) bool { return x.Spec.Service == "api" })
	MustStartSlot(t, d, s)
	if _, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "model-api-blue", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("Deployment model-api-blue after a release without the api: %v, want not found", err)
	}
	if _, err := c.Client.CoreV1().Services(ns).Get(ctx, "model-api-blue", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("slot Service model-api-blue after a release without the api: %v, want not found", err)
	}
	if _, err := c.Client.CoreV1().Services(ns).Get(ctx, "model-api-green", metav1.GetOptions{}); err != nil {
		t.Errorf("the live slot's Service of the api: %v, want it kept", err)
	}
	if _, ok := secretVars(t, c, ns, "web", "blue")["GANTRY_SERVICE_API_URL"]; ok {
		t.Error("blue's web is still told where an api is")
	}
}

// TestUnboundClaimFailsRollout: on a cluster whose storage cannot give the
// claim a ReadWriteMany volume (here: no provisioner, no volume) the
// candidate's pods are never scheduled, and StartSlot fails at the
// progress deadline naming the unbound claim; the active slot keeps
// serving.
func TestUnboundClaimFailsRollout(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "shop-unbound")
	blueIPs := activeBlue(t, c, ns, "unbound")

	d := newDriver(t, c, ns)
	d.ProgressDeadline = 3 * time.Second
	green := webSpec(imageV2, "rel-2")
	green.Spec.Persist = map[string]string{"uploads": "/var/lib/gantry/persist/uploads"}
	_, err := d.StartSlot(ctxFor(t), slot("unbound", "prod", "green", "rel-2", green))
	if gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(err.Error(), "unbound immediate PersistentVolumeClaims") {
		t.Fatalf("StartSlot(green) = %v, want EFAILED naming the unbound PersistentVolumeClaims", err)
	}
	checkUntouched(t, c, ns, "unbound", blueIPs)
}
