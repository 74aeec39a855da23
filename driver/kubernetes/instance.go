package kubernetes

import (
	"context"
	"encoding/json"
	"io"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// handle is what the orchestrator persists per instance. The UID tells a
// Deployment from a later one of the same name, so re-attaching never
// adopts something that was recreated meanwhile.
type handle struct {
	Namespace  string `json:"namespace"`
	Deployment string `json:"deployment"`
	UID        string `json:"uid"`
	Index      int    `json:"index"`
}

func (h handle) String() string {
	b, _ := json.Marshal(h)
	return string(b)
}

func parseHandle(inst gantry.Instance) (handle, error) {
	var h handle
	if err := json.Unmarshal([]byte(inst.Handle), &h); err != nil || h.Namespace == "" || h.Deployment == "" {
		return h, gantry.Errorf(gantry.EINVALID, "kubernetes: instance %s-%d has no kubernetes handle", inst.Service, inst.Index)
	}
	return h, nil
}

// Start implements gantry.Driver for callers that start instances one by
// one (the shared suite, or an orchestrator without SlotDriver support):
// instance i of a service is replica i of the slot's Deployment, so Start
// grows the Deployment to at least i+1 replicas and waits for the rollout.
// A Start with another release rolls the whole Deployment to it.
func (d *Driver) Start(ctx context.Context, spec gantry.InstanceSpec) (gantry.Instance, error) {
	if err := validate(spec); err != nil {
		return gantry.Instance{}, err
	}
	if spec.Index < 0 {
		return gantry.Instance{}, gantry.Errorf(gantry.EINVALID, "kubernetes: instance index %d", spec.Index)
	}
	want := int32(spec.Index + 1)
	dep, err := d.applyDeployment(ctx, spec, spec.Port > 0, func(cur int32, _ bool) int32 { return max(cur, want) })
	if err != nil {
		return gantry.Instance{}, err
	}
	done, err := d.waitRollout(ctx, dep.Namespace, dep.Name)
	if err != nil {
		return gantry.Instance{}, err
	}
	insts, err := d.instancesOf(ctx, done, spec.Service)
	if err != nil {
		return gantry.Instance{}, err
	}
	if spec.Index >= len(insts) {
		// Scaled down by someone else meanwhile.
		return gantry.Instance{}, gantry.Errorf(gantry.ECONFLICT, "kubernetes: deployment %s/%s has %d replicas, fewer than instance %d needs", dep.Namespace, dep.Name, len(insts), spec.Index)
	}
	inst := insts[spec.Index]
	pod, err := d.claimPod(ctx, done, spec.Index)
	if err != nil {
		return gantry.Instance{}, err
	}
	if pod != nil {
		inst.Addr = podAddr(pod, containerPort(done))
		if t := pod.Status.StartTime; t != nil {
			inst.StartedAt = t.Time
		}
	}
	return inst, nil
}

// podOf is instance i's pod among a Deployment's ready pods: the one it
// claimed (claimPod), else the i-th oldest; nil when there is none.
func podOf(pods []corev1.Pod, i int) *corev1.Pod {
	for k := range pods {
		if pods[k].Annotations[AnnotationInstance] == strconv.Itoa(i) {
			return &pods[k]
		}
	}
	if i < len(pods) {
		return &pods[i]
	}
	return nil
}

// claimPod gives instance i of a Deployment a ready pod of its own: the
// one it claimed before, else the oldest that no instance has claimed,
// annotated with i under optimistic concurrency. Ordering alone cannot do
// this for Starts that run at once: creation times have whole seconds,
// so a pod created later in the same second can sort first and two
// instances would be handed one pod. nil when no pod is free.
func (d *Driver) claimPod(ctx context.Context, dep *appsv1.Deployment, i int) (*corev1.Pod, error) {
	replicas := int(deref(dep.Spec.Replicas))
	for range 20 {
		pods, err := d.podsOf(ctx, dep)
		if err != nil {
			return nil, err
		}
		var free *corev1.Pod
		for k := range pods {
			p := &pods[k]
			n, err := strconv.Atoi(p.Annotations[AnnotationInstance])
			switch {
			case err == nil && n == i:
				return p, nil
			case (err != nil || n >= replicas) && free == nil:
				free = p // unclaimed, or claimed by an instance scaled away
			}
		}
		if free == nil {
			return nil, nil
		}
		if free.Annotations == nil {
			free.Annotations = map[string]string{}
		}
		free.Annotations[AnnotationInstance] = strconv.Itoa(i)
		claimed, err := d.Client.pods(dep.Namespace).Update(ctx, free.Name, free)
		if err == nil {
			return claimed, nil
		}
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) {
			return nil, apiError(err, "claim pod %s/%s for instance %d", dep.Namespace, free.Name, i)
		}
	}
	return nil, gantry.Errorf(gantry.EUNAVAILABLE, "kubernetes: no pod of %s/%s could be claimed for instance %d: the pods kept changing", dep.Namespace, dep.Name, i)
}

// lookup finds the instance's Deployment; nil when it is gone, was
// recreated, or no longer has the instance's replica.
func (d *Driver) lookup(ctx context.Context, inst gantry.Instance) (*appsv1.Deployment, handle, error) {
	h, err := parseHandle(inst)
	if err != nil {
		return nil, h, err
	}
	dep, err := d.Client.deployments(h.Namespace).Get(ctx, h.Deployment)
	if apierrors.IsNotFound(err) {
		return nil, h, nil
	}
	if err != nil {
		return nil, h, apiError(err, "get deployment %s/%s", h.Namespace, h.Deployment)
	}
	if string(dep.UID) != h.UID || dep.DeletionTimestamp != nil || h.Index >= int(deref(dep.Spec.Replicas)) {
		return nil, h, nil
	}
	return dep, h, nil
}

// Attach implements gantry.Driver: it only reads; nothing is recreated.
func (d *Driver) Attach(ctx context.Context, inst gantry.Instance) error {
	dep, h, err := d.lookup(ctx, inst)
	if err != nil {
		return err
	}
	if dep == nil {
		return gantry.Errorf(gantry.ENOTFOUND, "kubernetes: instance %d of deployment %s/%s is gone", h.Index, h.Namespace, h.Deployment)
	}
	return nil
}

// Inspect implements gantry.Driver. Kubernetes restarts what exits, so an
// instance is running while its replica is wanted, and gone otherwise.
func (d *Driver) Inspect(ctx context.Context, inst gantry.Instance) (gantry.InstanceState, error) {
	dep, _, err := d.lookup(ctx, inst)
	if err != nil {
		return gantry.InstanceState{}, err
	}
	if dep == nil {
		return gantry.InstanceState{State: gantry.InstanceGone}, nil
	}
	return gantry.InstanceState{State: gantry.InstanceRunning, Detail: progress(dep)}, nil
}

// signals are the stop signals a manifest may name. The kubelet sends the
// image's STOPSIGNAL (SIGTERM unless the image says otherwise), then SIGKILL
// after the grace period set from the stop timeout at Start; the signal
// is checked so a typo fails here as it does on every other driver.
var signals = map[string]bool{
	"SIGTERM": true, "SIGINT": true, "SIGQUIT": true, "SIGHUP": true,
	"SIGUSR1": true, "SIGUSR2": true, "SIGKILL": true, "SIGWINCH": true,
}

// Stop implements gantry.Driver: replicas are counted, not named, so
// stopping instance i leaves the Deployment with i replicas (stopping i
// stops every instance above it too), and stopping instance 0 deletes the
// Deployment and waits until its pods are gone.
func (d *Driver) Stop(ctx context.Context, inst gantry.Instance, stop gantry.StopSpec) error {
	if stop.Signal != "" && !signals[stop.Signal] {
		return gantry.Errorf(gantry.EINVALID, "kubernetes: unknown stop signal %q", stop.Signal)
	}
	dep, h, err := d.lookup(ctx, inst)
	if err != nil || dep == nil {
		return err
	}
	// Bounded: the kubelet kills after the grace period; beyond that
	// something is wrong with the cluster, not the app.
	ctx, cancel := context.WithTimeout(ctx, stop.Timeout+2*time.Minute)
	defer cancel()
	if h.Index == 0 {
		return d.deleteDeployment(ctx, h.Namespace, h.Deployment)
	}
	if err := d.scale(ctx, h.Namespace, h.Deployment, int32(h.Index)); err != nil {
		return err
	}
	_, err = d.waitRollout(ctx, h.Namespace, h.Deployment)
	return err
}

// Logs implements gantry.Driver with the pod's log from the API server
// (the kubelet keeps it; a cluster without kubelets has none).
func (d *Driver) Logs(ctx context.Context, inst gantry.Instance, tail int, follow bool, w io.Writer) error {
	dep, h, err := d.lookup(ctx, inst)
	if err != nil {
		return err
	}
	if dep == nil {
		return gantry.Errorf(gantry.ENOTFOUND, "kubernetes: instance %d of deployment %s/%s is gone", h.Index, h.Namespace, h.Deployment)
	}
	pods, err := d.podsOf(ctx, dep)
	if err != nil {
		return err
	}
	pod := podOf(pods, h.Index)
	if pod == nil {
		return gantry.Errorf(gantry.EUNAVAILABLE, "kubernetes: instance %d of deployment %s/%s has no ready pod", h.Index, h.Namespace, h.Deployment)
	}
	opts := &corev1.PodLogOptions{Follow: follow}
	if tail > 0 {
		opts.TailLines = new(int64(tail))
	}
	rc, err := d.Client.podLogs(ctx, h.Namespace, pod.Name, opts)
	if err != nil {
		return apiError(err, "logs of pod %s/%s", h.Namespace, pod.Name)
	}
	defer rc.Close()
	_, err = io.Copy(w, rc)
	if ctx.Err() != nil {
		return nil
	}
	return err
}
