package kubernetes

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
)

const (
	describeTimeout = 10 * time.Second
	maxDescribed    = 3 // pods, and warning events per pod, in a failure message
)

// describePods says why the pods of dep's current template are not ready:
// their container states and their latest warning events (image pull
// errors, failed probes, crash loops), the way `kubectl describe` would,
// in a form that fits a deployment's failure message. It never fails: what
// it cannot read it leaves out.
func (d *Driver) describePods(ctx context.Context, ns string, dep *appsv1.Deployment) string {
	if dep == nil || dep.Spec.Selector == nil {
		return ""
	}
	list, err := d.Client.pods(ns).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(dep.Spec.Selector.MatchLabels).String(),
	})
	if err != nil {
		return "; pods: " + err.Error()
	}
	var parts []string
	for _, pod := range list.Items {
		if !currentTemplate(&pod, dep) || podReady(&pod) {
			continue
		}
		if len(parts) == maxDescribed {
			parts = append(parts, "…")
			break
		}
		parts = append(parts, d.describePod(ctx, &pod))
	}
	if len(parts) == 0 {
		return ""
	}
	return "; " + strings.Join(parts, "; ")
}

func (d *Driver) describePod(ctx context.Context, pod *corev1.Pod) string {
	var b strings.Builder
	fmt.Fprintf(&b, "pod %s %s", pod.Name, pod.Status.Phase)
	for _, cs := range pod.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			fmt.Fprintf(&b, ", container %s waiting: %s", cs.Name, cs.State.Waiting.Reason)
			if m := cs.State.Waiting.Message; m != "" {
				fmt.Fprintf(&b, " (%s)", m)
			}
		case cs.State.Terminated != nil:
			fmt.Fprintf(&b, ", container %s exited %d: %s", cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason)
		case !cs.Ready:
			fmt.Fprintf(&b, ", container %s not ready", cs.Name)
		}
		if cs.RestartCount > 0 {
			fmt.Fprintf(&b, " after %d restarts", cs.RestartCount)
		}
	}
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			fmt.Fprintf(&b, ", not scheduled: %s", c.Message)
		}
	}
	items := d.warnings(ctx, pod)
	slices.SortFunc(items, func(a, b corev1.Event) int { return eventTime(b).Compare(eventTime(a)) })
	for i, ev := range items {
		if i == maxDescribed {
			break
		}
		fmt.Fprintf(&b, ", event %s: %s", ev.Reason, strings.TrimSpace(ev.Message))
		if ev.Count > 1 {
			fmt.Fprintf(&b, " (×%d)", ev.Count)
		}
	}
	return b.String()
}

func eventTime(ev corev1.Event) time.Time {
	switch {
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp.Time
	case !ev.EventTime.IsZero():
		return ev.EventTime.Time
	}
	return ev.CreationTimestamp.Time
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// eventGrace is how long a stuck pod's warning event may trail its status:
// the kubelet records events asynchronously, and the event says more than
// the status (which registry, which probe).
const eventGrace = 2 * time.Second

// warnings lists the pod's warning events; for a stuck pod, or a running
// one that is not ready (a failing probe), without one yet, it watches
// briefly for the first.
func (d *Driver) warnings(ctx context.Context, pod *corev1.Pod) []corev1.Event {
	opts := metav1.ListOptions{
		FieldSelector: fields.Set{
			"involvedObject.kind": "Pod",
			"involvedObject.name": pod.Name,
			"involvedObject.uid":  string(pod.UID),
			"type":                corev1.EventTypeWarning,
		}.String(),
	}
	events := d.Client.events(pod.Namespace)
	list, err := events.List(ctx, opts)
	if err != nil {
		return nil
	}
	if len(list.Items) > 0 || (stuck(pod) == "" && pod.Status.Phase != corev1.PodRunning) {
		return list.Items
	}
	ctx, cancel := context.WithTimeout(ctx, eventGrace)
	defer cancel()
	opts.ResourceVersion = list.ResourceVersion
	w, err := events.Watch(ctx, opts)
	if err != nil {
		return nil
	}
	defer w.Stop()
	for {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			if e, ok := ev.Object.(*corev1.Event); ok {
				return []corev1.Event{*e}
			}
		case <-ctx.Done():
			return nil
		}
	}
}
