package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gantry-dev/gantry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// Container states that will not fix themselves within a rollout: waiting
// for the progress deadline would only delay the failure message.
var fatalWaiting = []string{
	"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
	"CrashLoopBackOff", "CreateContainerConfigError", "CreateContainerError", "RunContainerError",
}

// errRolloutFailed marks a rollout that ended without becoming ready.
var errRolloutFailed = errors.New("rollout failed")

// waitRollout waits, by watching, until the Deployment's current template
// is fully rolled out: observed, every replica updated and available, no
// old replica left. It fails on a progress deadline, on pods of the new
// template stuck in a state that will not heal, and when ctx ends; the
// error then says what the pods and their events say.
//
// The wait is bounded by the progress deadline and a minute more: the
// controller marks the deadline only while a rollout progresses, so a
// Deployment complete once whose pod then stays unavailable, or a
// controller that stopped, would otherwise be waited on for ever.
func (d *Driver) waitRollout(ctx context.Context, ns, name string) (*appsv1.Deployment, error) {
	ctx, stop := context.WithTimeout(ctx, d.progressDeadline()+time.Minute)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)

	var dep *appsv1.Deployment
	podsDone := make(chan struct{})
	started := false
	cond := func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			return false, gantry.Errorf(gantry.ENOTFOUND, "deployment %s/%s was deleted during its rollout", ns, name)
		}
		obj, ok := ev.Object.(*appsv1.Deployment)
		if !ok {
			return false, nil
		}
		dep = obj
		if !started {
			// The pods are watched from the first sight of the Deployment,
			// for the template it has then.
			started = true
			go func() {
				defer close(podsDone)
				if err := d.watchPods(ctx, ns, obj); err != nil {
					cancel(err)
				}
			}()
		}
		return rolloutDone(obj)
	}
	_, err := watchtools.UntilWithSync(ctx, d.deploymentLW(ns, name), &appsv1.Deployment{}, nil, cond)
	cancel(nil)
	if started {
		<-podsDone
	}
	if err == nil {
		return dep, nil
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(err, errRolloutFailed) {
		err = cause
	}
	if gantry.ErrorCode(err) == gantry.ENOTFOUND {
		return nil, err
	}
	// Describe with a fresh context: ctx may be what ended.
	dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), describeTimeout)
	defer dcancel()
	detail := d.describePods(dctx, ns, dep)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || wait.Interrupted(err) {
		return dep, gantry.Errorf(gantry.EUNAVAILABLE, "deployment %s/%s not rolled out before the deadline: %s%s", ns, name, progress(dep), detail)
	}
	return dep, gantry.Errorf(gantry.EFAILED, "deployment %s/%s: %v%s", ns, name, err, detail)
}

// rolloutDone is kubectl's "rollout status" test, plus the progress deadline.
func rolloutDone(dep *appsv1.Deployment) (bool, error) {
	if dep.Generation > dep.Status.ObservedGeneration {
		return false, nil
	}
	for _, c := range dep.Status.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return false, fmt.Errorf("%w: progress deadline of %ds exceeded: %s", errRolloutFailed, deref(dep.Spec.ProgressDeadlineSeconds), progress(dep))
		}
	}
	want := deref(dep.Spec.Replicas)
	s := dep.Status
	return s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want, nil
}

func progress(dep *appsv1.Deployment) string {
	if dep == nil {
		return "not seen"
	}
	s := dep.Status
	return fmt.Sprintf("%d of %d replicas updated, %d available, %d in total", s.UpdatedReplicas, deref(dep.Spec.Replicas), s.AvailableReplicas, s.Replicas)
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func (d *Driver) deploymentLW(ns, name string) cache.ListerWatcher {
	return d.Client.deployments(ns).listWatch("", fields.OneTermEqualSelector("metadata.name", name).String())
}

// watchPods returns an error as soon as a pod of dep's current template is
// stuck (image pull error, crash loop…), and nil when ctx ends.
func (d *Driver) watchPods(ctx context.Context, ns string, dep *appsv1.Deployment) error {
	sel := labels.SelectorFromSet(dep.Spec.Selector.MatchLabels).String()
	lw := d.Client.pods(ns).listWatch(sel, "")
	_, err := watchtools.UntilWithSync(ctx, lw, &corev1.Pod{}, nil, func(ev watch.Event) (bool, error) {
		pod, ok := ev.Object.(*corev1.Pod)
		if !ok || ev.Type == watch.Deleted || !currentTemplate(pod, dep) {
			return false, nil
		}
		if why := stuck(pod); why != "" {
			return false, fmt.Errorf("%w: pod %s: %s", errRolloutFailed, pod.Name, why)
		}
		return false, nil
	})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// currentTemplate tells a pod of the template being rolled out from one
// of the previous release, which must not fail the new rollout.
func currentTemplate(pod *corev1.Pod, dep *appsv1.Deployment) bool {
	want := dep.Spec.Template.Annotations
	return pod.Annotations[AnnotationRelease] == want[AnnotationRelease] &&
		pod.Annotations[AnnotationVarsHash] == want[AnnotationVarsHash] &&
		podImage(pod) == podImageOf(dep.Spec.Template.Spec)
}

func podImage(pod *corev1.Pod) string { return podImageOf(pod.Spec) }

func podImageOf(spec corev1.PodSpec) string {
	if len(spec.Containers) == 0 {
		return ""
	}
	return spec.Containers[0].Image
}

// stuck says why a pod will not become ready by itself, or "".
func stuck(pod *corev1.Pod) string {
	for _, cs := range pod.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && slices.Contains(fatalWaiting, w.Reason) {
			return fmt.Sprintf("container %s: %s: %s", cs.Name, w.Reason, w.Message)
		}
	}
	return ""
}
