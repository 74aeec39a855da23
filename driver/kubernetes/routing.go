package kubernetes

import (
	"context"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
)

// The routing objects of an environment's hosts: one kind per environment
// (runtime.routing), live hosts to the live Service, preview hosts to the
// preview Service. They are named after the environment, so that during a
// rename the new name's objects claim the hosts before the old name's are
// released (gantry.HostReleaser).

// routingKind is one kind of routing object.
type routingKind struct {
	gvr  schema.GroupVersionResource
	kind string
	// objects are the desired objects for hosts served by service: more
	// than one when the kind takes one host per object (Route).
	objects func(k routingKind, r routingRequest) []*unstructured.Unstructured
}

var routingKinds = map[string]routingKind{
	gantry.RoutingIngress: {
		gvr:     schema.GroupVersionResource{Group: "networking.k8s.io", Version: "v1", Resource: "ingresses"},
		kind:    "Ingress",
		objects: ingressObjects,
	},
	gantry.RoutingRoute: {
		gvr:     schema.GroupVersionResource{Group: "route.openshift.io", Version: "v1", Resource: "routes"},
		kind:    "Route",
		objects: routeObjects,
	},
	gantry.RoutingHTTPRoute: {
		gvr:     schema.GroupVersionResource{Group: "gateway.networking.k8s.io", Version: "v1", Resource: "httproutes"},
		kind:    "HTTPRoute",
		objects: httpRouteObjects,
	},
}

// routing is the environment's kind of routing object; false with
// routing: none.
func routing(rt gantry.RuntimeSpec) (routingKind, bool) {
	name := rt.Routing
	switch {
	case rt.RouterInFront():
		// Gantry's router serves the hosts: no object may compete.
		name = gantry.RoutingNone
	case name == "":
		name = gantry.RoutingIngress
	}
	k, ok := routingKinds[name]
	return k, ok
}

// routingRequest is what one role's routing objects are made from.
type routingRequest struct {
	ns, app, env, role string
	hosts              []string
	service            string // the Service the hosts go to
	gateway            string // HTTPRoute: "namespace/name" or "name"
}

// name is the object's name; i > 0 numbers the further objects of a kind
// with one host per object.
func (r routingRequest) name(i int) string {
	n := r.app + "-" + r.env
	if r.role == RolePreview {
		n += "-preview"
	}
	if i > 0 {
		n += "-" + strconv.Itoa(i)
	}
	return dnsName(n)
}

func (r routingRequest) labels() map[string]string {
	return map[string]string{
		LabelManagedBy: managedBy,
		LabelApp:       labelValue(r.app),
		LabelEnv:       labelValue(r.env),
		LabelRole:      r.role,
	}
}

func (r routingRequest) object(k routingKind, i int, spec map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"spec": spec}}
	u.SetAPIVersion(k.gvr.GroupVersion().String())
	u.SetKind(k.kind)
	u.SetName(r.name(i))
	u.SetNamespace(r.ns)
	u.SetLabels(r.labels())
	return u
}

// ingressObjects: one Ingress, a rule per host, every path to the Service.
func ingressObjects(k routingKind, r routingRequest) []*unstructured.Unstructured {
	rules := make([]any, 0, len(r.hosts))
	for _, h := range r.hosts {
		rules = append(rules, map[string]any{
			"host": h,
			"http": map[string]any{"paths": []any{map[string]any{
				"path":     "/",
				"pathType": "Prefix",
				"backend": map[string]any{"service": map[string]any{
					"name": r.service,
					"port": map[string]any{"number": int64(servicePort)},
				}},
			}}},
		})
	}
	return []*unstructured.Unstructured{r.object(k, 0, map[string]any{"rules": rules})}
}

// routeObjects: a Route holds one host, so one per host. A wildcard host
// "*.example.com" is a Route for a host of that domain with the Subdomain
// wildcard policy, which is how OpenShift spells it.
func routeObjects(k routingKind, r routingRequest) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, 0, len(r.hosts))
	for i, h := range r.hosts {
		policy := "None"
		if rest, ok := strings.CutPrefix(h, "*."); ok {
			h, policy = "wildcard."+rest, "Subdomain"
		}
		out = append(out, r.object(k, i, map[string]any{
			"host":           h,
			"wildcardPolicy": policy,
			"to":             map[string]any{"kind": "Service", "name": r.service, "weight": int64(100)},
			"port":           map[string]any{"targetPort": containerPortName},
		}))
	}
	return out
}

// httpRouteObjects: one HTTPRoute attached to the environment's Gateway.
func httpRouteObjects(k routingKind, r routingRequest) []*unstructured.Unstructured {
	parent := map[string]any{"group": "gateway.networking.k8s.io", "kind": "Gateway"}
	if ns, name, ok := strings.Cut(r.gateway, "/"); ok {
		parent["namespace"], parent["name"] = ns, name
	} else {
		parent["name"] = r.gateway
	}
	hostnames := make([]any, 0, len(r.hosts))
	for _, h := range r.hosts {
		hostnames = append(hostnames, h)
	}
	return []*unstructured.Unstructured{r.object(k, 0, map[string]any{
		"parentRefs": []any{parent},
		"hostnames":  hostnames,
		"rules": []any{map[string]any{
			"matches":     []any{map[string]any{"path": map[string]any{"type": "PathPrefix", "value": "/"}}},
			"backendRefs": []any{map[string]any{"name": r.service, "port": int64(servicePort)}},
		}},
	})}
}

// hostService is the HTTP service the hosts go to: "web" when the slot
// has one, else the first HTTP service by name ("" when none). Gantry's
// router sends an environment's hosts to its HTTP services too; a cluster's
// routing object takes one backend.
func hostService(deps []string) string {
	if slices.Contains(deps, "web") {
		return "web"
	}
	if len(deps) == 0 {
		return ""
	}
	return slices.Min(deps)
}

// applyRouting makes the environment's routing objects of the given roles
// serve its hosts (live) or preview hosts (preview) through the Services
// of service, and removes its other routing objects of those roles: hosts
// dropped from the manifest, and objects of another kind after the
// environment's routing changed.
func (d *Driver) applyRouting(ctx context.Context, ref gantry.SlotRef, service string, roles ...string) error {
	ns := d.namespace(ref.Runtime, ref.App, ref.Env)
	kind, managed := routing(ref.Runtime)
	for _, role := range roles {
		req := routingRequest{ns: ns, app: ref.App, env: ref.Env, role: role, service: serviceName(ref.App, service), gateway: ref.Runtime.Gateway, hosts: ref.Hosts}
		if role == RolePreview {
			req.service, req.hosts = previewName(ref.App, service), ref.PreviewHosts
		}
		var want []*unstructured.Unstructured
		if managed && service != "" && len(req.hosts) > 0 {
			want = kind.objects(kind, req)
			for _, obj := range want {
				if err := d.applyObject(ctx, kind, obj); err != nil {
					return err
				}
			}
		}
		if err := d.pruneRouting(ctx, ns, req.labels(), want, kind.kind); err != nil {
			return err
		}
	}
	return nil
}

// ReleaseHosts implements gantry.HostReleaser: it deletes the routing
// objects of environment ref.Env (every role and kind) in its namespace.
func (d *Driver) ReleaseHosts(ctx context.Context, ref gantry.SlotRef) error {
	ns := d.namespace(ref.Runtime, ref.App, ref.Env)
	sel := map[string]string{LabelManagedBy: managedBy, LabelApp: labelValue(ref.App), LabelEnv: labelValue(ref.Env)}
	kind, _ := routing(ref.Runtime)
	if err := d.pruneRouting(ctx, ns, sel, nil, kind.kind); err != nil {
		return err
	}
	d.logger().Info("kubernetes: hosts released", "namespace", ns, "app", ref.App, "env", ref.Env)
	return nil
}

var _ gantry.HostReleaser = (*Driver)(nil)

// pruneRouting deletes the routing objects of every kind that sel picks in
// ns, except keep. A kind whose API the cluster does not serve (no
// OpenShift, no Gateway API) has none; so has a kind other than the
// environment's own (kind) that Gantry's Role may not read.
func (d *Driver) pruneRouting(ctx context.Context, ns string, sel map[string]string, keep []*unstructured.Unstructured, kind string) error {
	for _, name := range slices.Sorted(maps.Keys(routingKinds)) {
		k := routingKinds[name]
		res := d.Client.dynamic.Resource(k.gvr).Namespace(ns)
		list, err := res.List(ctx, metav1.ListOptions{LabelSelector: labels.SelectorFromSet(sel).String()})
		if apierrors.IsNotFound(err) || (apierrors.IsForbidden(err) && k.kind != kind) {
			continue
		}
		if err != nil {
			return apiError(err, "list %s of %s", k.gvr.Resource, ns)
		}
		for _, obj := range list.Items {
			if slices.ContainsFunc(keep, func(u *unstructured.Unstructured) bool {
				return u.GetKind() == obj.GetKind() && u.GetName() == obj.GetName()
			}) {
				continue
			}
			if err := res.Delete(ctx, obj.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				return apiError(err, "delete %s %s/%s", k.kind, ns, obj.GetName())
			}
			d.logger().Info("kubernetes: routing object deleted", "namespace", ns, "kind", k.kind, "name", obj.GetName())
		}
	}
	return nil
}

// applyObject creates want or replaces the spec and labels of the object
// of that name, which must be Gantry's.
func (d *Driver) applyObject(ctx context.Context, k routingKind, want *unstructured.Unstructured) error {
	res := d.Client.dynamic.Resource(k.gvr).Namespace(want.GetNamespace())
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := res.Get(ctx, want.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = res.Create(ctx, want, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(k.gvr.GroupResource(), want.GetName(), err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if cur.GetLabels()[LabelManagedBy] != managedBy {
			return gantry.Errorf(gantry.ECONFLICT, "kubernetes: %s %s/%s exists and is not managed by gantry (label %s=%s missing)", k.kind, cur.GetNamespace(), cur.GetName(), LabelManagedBy, managedBy)
		}
		cur.SetLabels(want.GetLabels())
		cur.Object["spec"] = want.Object["spec"]
		_, err = res.Update(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		if gantry.ErrorCode(err) != "" && gantry.ErrorCode(err) != gantry.EINTERNAL {
			return err
		}
		return apiError(err, "apply %s %s/%s", k.kind, want.GetNamespace(), want.GetName())
	}
	d.logger().Info("kubernetes: routing object applied", "namespace", want.GetNamespace(), "kind", k.kind, "name", want.GetName())
	return nil
}
