package kubernetes

import (
	"context"
	"fmt"

	"github.com/gantry-dev/gantry"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"
)

// The cluster replaces a slot's pods by itself (a node drained, a pod
// evicted or deleted), and the new pod has another IP. With Gantry's router
// in front of the pods (runtime.traffic: router) the orchestrator follows
// that through gantry.SlotFollower: it watches the environment's pods and
// reads each slot's ready ones again when they change.

var _ gantry.SlotFollower = (*Driver)(nil)

// SlotInstances implements gantry.SlotFollower: the instances of ref's
// slot as StartSlot returns them (ready pods only), without waiting.
func (d *Driver) SlotInstances(ctx context.Context, ref gantry.SlotRef) ([]gantry.Instance, error) {
	deps, err := d.slotDeployments(ctx, ref)
	if err != nil {
		return nil, err
	}
	var insts []gantry.Instance
	for i := range deps {
		more, err := d.instancesOf(ctx, &deps[i], deps[i].Labels[LabelService])
		if err != nil {
			return nil, err
		}
		insts = append(insts, more...)
	}
	return insts, nil
}

// WatchSlots implements gantry.SlotFollower with a watch of the pods of
// ref's app in the environment's namespace: every event (a pod created,
// given an IP, made ready or not ready, deleted) calls changed.
func (d *Driver) WatchSlots(ctx context.Context, ref gantry.SlotRef, changed func()) error {
	ns := d.namespace(ref.Runtime, ref.App, ref.Env)
	sel := labels.SelectorFromSet(map[string]string{LabelManagedBy: managedBy, LabelApp: labelValue(ref.App)})
	w, err := d.Client.pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return apiError(err, "watch the pods of %s/%s", ref.App, ref.Env)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("kubernetes: the watch of the pods of %s/%s closed", ref.App, ref.Env)
			}
			if ev.Type == watch.Error {
				return fmt.Errorf("kubernetes: the watch of the pods of %s/%s: %v", ref.App, ref.Env, ev.Object)
			}
			changed()
		}
	}
}
