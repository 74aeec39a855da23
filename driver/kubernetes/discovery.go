package kubernetes

import (
	"context"
	"maps"
	"net"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RoleSlot marks the Service of one http service in one slot, which
// discovery points the slot's siblings at.
const RoleSlot = "slot"

// slotServiceName is the Service that selects the pods of one http service
// in one slot: the name of its Deployment (another kind of object).
func slotServiceName(app, service, slot string) string { return deploymentName(app, service, slot) }

// discoveryVars tell each pod of a slot where the slot's http services
// are: the slot's own Service of each, never the live or preview one, whose
// selectors a switch flips, so a candidate talks to the candidate's
// siblings before and after its switch. The names are those of the other
// runtimes (docs/services.md): GANTRY_SERVICE_<NAME>_URL, _ADDR and _ADDRS,
// the last one the same single address (the Service spreads the calls).
func discoveryVars(app, slot string, svcs []gantry.SlotServiceSpec) map[string]string {
	vars := map[string]string{}
	for _, svc := range svcs {
		if !svc.HTTP {
			continue
		}
		addr := net.JoinHostPort(slotServiceName(app, svc.Spec.Service, slot), strconv.Itoa(servicePort))
		key := "GANTRY_SERVICE_" + strings.ToUpper(strings.ReplaceAll(svc.Spec.Service, "-", "_"))
		vars[key+"_URL"] = "http://" + addr
		vars[key+"_ADDR"] = addr
		vars[key+"_ADDRS"] = addr
	}
	return vars
}

// withDiscovery returns vars with the discovery variables over them, as
// the other runtimes give them precedence.
func withDiscovery(vars, discovery map[string]string) map[string]string {
	out := maps.Clone(vars)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, discovery)
	return out
}

// slotServiceObject is the Service of spec's http service in its slot.
func slotServiceObject(ns string, spec gantry.InstanceSpec) *corev1.Service {
	svc := serviceObject(ns, slotServiceName(spec.App, spec.Service, spec.Slot), RoleSlot, spec, spec.Slot)
	svc.Labels[LabelSlot] = labelValue(spec.Slot)
	return svc
}

// deleteSlotService deletes a slot's Service of an http service when the
// slot's workloads are removed.
func (d *Driver) deleteSlotService(ctx context.Context, ns, name string) error {
	err := d.Client.services(ns).Delete(ctx, name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return apiError(err, "delete service %s/%s", ns, name)
	}
	return nil
}
