package kubernetes

import (
	"context"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
	"k8s.io/client-go/util/retry"
)

// applyDeployment creates or updates the Deployment (and its Secret) of
// spec's service in spec's slot. replicas picks the replica count from the
// current one (0 and false when there is none); it is asked again when a
// concurrent writer got there first.
func (d *Driver) applyDeployment(ctx context.Context, spec gantry.InstanceSpec, http bool, replicas func(cur int32, exists bool) int32) (*appsv1.Deployment, error) {
	ns := d.namespace(spec.Runtime, spec.App, spec.Env)
	name := deploymentName(spec.App, spec.Service, spec.Slot)
	vars, err := envVars(spec)
	if err != nil {
		return nil, err
	}
	if err := d.ensureNamespace(ctx, ns); err != nil {
		return nil, err
	}
	if err := d.applySecret(ctx, secretObject(ns, name, spec, vars)); err != nil {
		return nil, err
	}
	if err := d.ensureClaims(ctx, ns, spec); err != nil {
		return nil, err
	}
	deps := d.Client.deployments(ns)
	var out *appsv1.Deployment
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := deps.Get(ctx, name)
		if apierrors.IsNotFound(err) {
			want := d.deploymentObject(ns, name, spec, replicas(0, false), http, vars)
			out, err = deps.Create(ctx, want)
			if apierrors.IsAlreadyExists(err) {
				// Another instance's Start created it: go round again.
				return apierrors.NewConflict(appsv1.Resource("deployments"), name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := owned(&cur.ObjectMeta); err != nil {
			return err
		}
		want := d.deploymentObject(ns, name, spec, replicas(deref(cur.Spec.Replicas), true), http, vars)
		cur.Labels = want.Labels
		cur.Annotations = mergeAnnotations(cur.Annotations, want.Annotations)
		// The selector cannot change: one made before renames were
		// possible names the environment, and its pods keep that label.
		if sel := cur.Spec.Selector; sel != nil {
			want.Spec.Selector = sel
			maps.Copy(want.Spec.Template.Labels, sel.MatchLabels)
		}
		cur.Spec = want.Spec
		out, err = deps.Update(ctx, cur.Name, cur)
		return err
	})
	if err != nil {
		if gantry.ErrorCode(err) != "" && gantry.ErrorCode(err) != gantry.EINTERNAL {
			return nil, err
		}
		return nil, apiError(err, "apply deployment %s/%s", ns, name)
	}
	d.logger().Info("kubernetes: deployment applied", "namespace", ns, "deployment", name,
		"release", spec.ReleaseID, "replicas", deref(out.Spec.Replicas), "generation", out.Generation)
	return out, nil
}

func mergeAnnotations(cur, want map[string]string) map[string]string {
	out := maps.Clone(cur)
	if out == nil {
		out = map[string]string{}
	}
	maps.Copy(out, want)
	return out
}

// owned refuses to change an object Gantry did not create: a name clash
// with someone else's Deployment must not take it over.
func owned(m *metav1.ObjectMeta) error {
	if m.Labels[LabelManagedBy] != managedBy {
		return gantry.Errorf(gantry.ECONFLICT, "kubernetes: %s/%s exists and is not managed by gantry (label %s=%s missing)", m.Namespace, m.Name, LabelManagedBy, managedBy)
	}
	return nil
}

func (d *Driver) applySecret(ctx context.Context, want *corev1.Secret) error {
	secrets := d.Client.secrets(want.Namespace)
	// Data, not StringData: an update must drop variables that are gone.
	want.Data = make(map[string][]byte, len(want.StringData))
	for k, v := range want.StringData {
		want.Data[k] = []byte(v)
	}
	want.StringData = nil
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := secrets.Get(ctx, want.Name)
		if apierrors.IsNotFound(err) {
			_, err = secrets.Create(ctx, want)
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("secrets"), want.Name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := owned(&cur.ObjectMeta); err != nil {
			return err
		}
		cur.Labels = want.Labels
		cur.Data = want.Data
		_, err = secrets.Update(ctx, cur.Name, cur)
		return err
	})
	if err != nil && gantry.ErrorCode(err) == gantry.EINTERNAL {
		// Never the object itself in the message: it holds the values.
		return apiError(err, "apply secret %s/%s", want.Namespace, want.Name)
	}
	return err
}

// applyService creates the Service or points its selector at slot.
func (d *Driver) applyService(ctx context.Context, want *corev1.Service) error {
	svcs := d.Client.services(want.Namespace)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := svcs.Get(ctx, want.Name)
		if apierrors.IsNotFound(err) {
			_, err = svcs.Create(ctx, want)
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("services"), want.Name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := owned(&cur.ObjectMeta); err != nil {
			return err
		}
		if maps.Equal(cur.Spec.Selector, want.Spec.Selector) && maps.Equal(cur.Labels, want.Labels) {
			return nil
		}
		cur.Labels = want.Labels
		cur.Spec.Selector = want.Spec.Selector
		cur.Spec.Ports = want.Spec.Ports
		_, err = svcs.Update(ctx, cur.Name, cur)
		return err
	})
	if err != nil && gantry.ErrorCode(err) == gantry.EINTERNAL {
		return apiError(err, "apply service %s/%s", want.Namespace, want.Name)
	}
	return err
}

// deleteDeployment deletes a Deployment, its pods first (foreground), and
// its Secret, and waits by watching until it is gone.
func (d *Driver) deleteDeployment(ctx context.Context, ns, name string) error {
	fg := metav1.DeletePropagationForeground
	err := d.Client.deployments(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg})
	if err != nil && !apierrors.IsNotFound(err) {
		return apiError(err, "delete deployment %s/%s", ns, name)
	}
	err = d.Client.secrets(ns).Delete(ctx, name+"-env", metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return apiError(err, "delete secret %s/%s-env", ns, name)
	}
	gone := func(store cache.Store) (bool, error) {
		_, exists, err := store.GetByKey(ns + "/" + name)
		return !exists, err
	}
	_, err = watchtools.UntilWithSync(ctx, d.deploymentLW(ns, name), &appsv1.Deployment{}, gone, func(ev watch.Event) (bool, error) {
		return ev.Type == watch.Deleted, nil
	})
	if err != nil {
		return gantry.Errorf(gantry.EUNAVAILABLE, "deployment %s/%s not gone: %v", ns, name, err)
	}
	return nil
}

// slotDeployments lists the Deployments of one slot of an environment.
func (d *Driver) slotDeployments(ctx context.Context, ref gantry.SlotRef) ([]appsv1.Deployment, error) {
	ns := d.namespace(ref.Runtime, ref.App, ref.Env)
	sel := labels.SelectorFromSet(map[string]string{
		LabelManagedBy: managedBy,
		LabelApp:       labelValue(ref.App),
		LabelSlot:      labelValue(ref.Slot),
	})
	list, err := d.Client.deployments(ns).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return nil, apiError(err, "list deployments of %s/%s slot %s", ref.App, ref.Env, ref.Slot)
	}
	return list.Items, nil
}

// podsOf lists the ready pods of a Deployment, oldest first, so that
// instance i keeps naming the same pod while nothing changes.
func (d *Driver) podsOf(ctx context.Context, dep *appsv1.Deployment) ([]corev1.Pod, error) {
	list, err := d.Client.pods(dep.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(dep.Spec.Selector.MatchLabels).String(),
	})
	if err != nil {
		return nil, apiError(err, "list pods of %s/%s", dep.Namespace, dep.Name)
	}
	pods := slices.DeleteFunc(list.Items, func(p corev1.Pod) bool { return p.DeletionTimestamp != nil || !podReady(&p) })
	slices.SortFunc(pods, func(a, b corev1.Pod) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return pods, nil
}

// podAddr is where Gantry's router reaches a pod when it stays in front
// (pod IPs must then be routable from the router's host).
func podAddr(pod *corev1.Pod, port int) string {
	if pod.Status.PodIP == "" || port <= 0 {
		return ""
	}
	return net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(port))
}

func containerPort(dep *appsv1.Deployment) int {
	for _, c := range dep.Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == containerPortName {
				return int(p.ContainerPort)
			}
		}
	}
	return 0
}
