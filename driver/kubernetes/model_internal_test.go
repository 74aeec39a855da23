package kubernetes

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestModelObjects pins the app model's objects: a Deployment that mounts
// a persistent directory and is told its siblings' slot Services, the claim
// (ReadWriteMany), and the slot's own Service.
func TestModelObjects(t *testing.T) {
	d := &Driver{}
	spec := testSpec()
	spec.Persist = map[string]string{"uploads": "/var/lib/gantry/persist/uploads"}
	spec.Vars = withDiscovery(map[string]string{"GANTRY_PERSIST_UPLOADS": "/var/lib/gantry/persist/uploads"},
		discoveryVars(spec.App, spec.Slot, []gantry.SlotServiceSpec{{Spec: spec, HTTP: true}, {Spec: gantry.InstanceSpec{Service: "order-api"}, HTTP: true}, {Spec: gantry.InstanceSpec{Service: "mailer"}}}))
	vars, err := envVars(spec)
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"GANTRY_SERVICE_ORDER_API_URL":  "http://shop-order-api-green:80",
		"GANTRY_SERVICE_ORDER_API_ADDR": "shop-order-api-green:80",
		"GANTRY_SERVICE_WEB_ADDRS":      "shop-web-green:80",
		"GANTRY_PERSIST_UPLOADS":        "/var/lib/gantry/persist/uploads",
	} {
		if vars[k] != want {
			t.Errorf("%s=%q, want %q", k, vars[k], want)
		}
	}
	if _, ok := vars["GANTRY_SERVICE_MAILER_URL"]; ok {
		t.Error("a worker has an address")
	}
	dep := d.deploymentObject("shop-prod", deploymentName(spec.App, spec.Service, spec.Slot), spec, 2, true, vars)
	claim, err := d.claimObject("shop-prod", spec, "uploads")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		name string
		obj  any
		into any
	}{
		{"deployment-persist.golden.json", dep, &appsv1.Deployment{}},
		{"claim.golden.json", claim, &corev1.PersistentVolumeClaim{}},
		{"slot-service.golden.json", slotServiceObject("shop-prod", spec), &corev1.Service{}},
	} {
		got, err := json.MarshalIndent(o.obj, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(got), "hunter2") {
			t.Fatalf("%s: a variable's value is in the object", o.name)
		}
		golden(t, o.name, got)
		roundTrip(t, got, o.into)
	}
}

// TestClaimClassAndSize: the environment's runtime.storage_class and
// runtime.persist_size go into the claim, ahead of the driver's defaults.
func TestClaimClassAndSize(t *testing.T) {
	d := &Driver{StorageClass: "driver-default", PersistSize: "2Gi"}
	spec := testSpec()
	spec.Persist = map[string]string{"uploads": "/var/lib/gantry/persist/uploads"}
	spec.Runtime.StorageClass, spec.Runtime.PersistSize = "cephfs-rwx", "50Gi"
	claim, err := d.claimObject("shop-prod", spec, "uploads")
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(claim, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "claim-class.golden.json", got)
	roundTrip(t, got, &corev1.PersistentVolumeClaim{})

	spec.Runtime.StorageClass, spec.Runtime.PersistSize = "", ""
	if claim, err = d.claimObject("shop-prod", spec, "uploads"); err != nil {
		t.Fatal(err)
	}
	if c, q := claim.Spec.StorageClassName, claim.Spec.Resources.Requests[corev1.ResourceStorage]; c == nil || *c != "driver-default" || q.String() != "2Gi" {
		t.Errorf("without the environment's settings: class %v, size %s; want the driver's driver-default, 2Gi", c, q.String())
	}
}

func TestValidatePersist(t *testing.T) {
	spec := testSpec()
	for _, dir := range []string{"uploads", "/", ""} {
		spec.Persist = map[string]string{"uploads": dir}
		if err := validate(spec); gantry.ErrorCode(err) != gantry.EINVALID {
			t.Errorf("mount path %q: %v, want EINVALID", dir, err)
		}
	}
}
