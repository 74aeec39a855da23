package kubernetes

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// Service roles.
const (
	RoleLive    = "live"
	RolePreview = "preview"
)

const activeKey = "active-slot"

// StartSlot implements gantry.SlotDriver: it applies one Deployment per
// service, waits for every rollout, and points the preview Services at the
// slot. The live Services are left alone, so a failing candidate never
// disturbs the active slot.
func (d *Driver) StartSlot(ctx context.Context, s gantry.SlotSpec) ([]gantry.Instance, error) {
	if len(s.Services) == 0 {
		return nil, gantry.Errorf(gantry.EINVALID, "kubernetes: slot %s of %s/%s has no services", s.Slot, s.App, s.Env)
	}
	specs := make([]gantry.SlotServiceSpec, len(s.Services))
	discovery := discoveryVars(s.App, s.Slot, s.Services)
	for i, svc := range s.Services {
		svc.Spec.App, svc.Spec.Env, svc.Spec.Slot, svc.Spec.Runtime = s.App, s.Env, s.Slot, s.Runtime
		svc.Spec.Vars = withDiscovery(svc.Spec.Vars, discovery)
		if s.ReleaseID != "" {
			svc.Spec.ReleaseID = s.ReleaseID
		}
		if err := validate(svc.Spec); err != nil {
			return nil, err
		}
		if svc.Instances < 0 {
			return nil, gantry.Errorf(gantry.EINVALID, "kubernetes: service %s: %d instances", svc.Spec.Service, svc.Instances)
		}
		specs[i] = svc
	}
	active, err := d.ActiveSlot(ctx, s.SlotRef)
	if err != nil {
		return nil, err
	}
	// The slot's own Services first: discovery names them, so a pod that
	// calls a sibling as soon as it starts finds the name.
	for _, svc := range specs {
		if svc.HTTP {
			ns := d.namespace(s.Runtime, s.App, s.Env)
			if err := d.ensureNamespace(ctx, ns); err != nil {
				return nil, err
			}
			if err := d.applyService(ctx, slotServiceObject(ns, svc.Spec)); err != nil {
				return nil, err
			}
		}
	}
	deps := make([]*appsv1.Deployment, len(specs))
	for i, svc := range specs {
		n := int32(svc.Instances)
		dep, err := d.applyDeployment(ctx, svc.Spec, svc.HTTP, func(int32, bool) int32 { return n })
		if err != nil {
			return nil, err
		}
		deps[i] = dep
	}
	// Services dropped from the manifest leave the slot, with the slot's
	// Service of each (named as its Deployment).
	existing, err := d.slotDeployments(ctx, s.SlotRef)
	if err != nil {
		return nil, err
	}
	for _, dep := range existing {
		if !slices.ContainsFunc(deps, func(x *appsv1.Deployment) bool { return x.Name == dep.Name }) {
			if err := d.deleteDeployment(ctx, dep.Namespace, dep.Name); err != nil {
				return nil, err
			}
			if err := d.deleteSlotService(ctx, dep.Namespace, dep.Name); err != nil {
				return nil, err
			}
		}
	}
	var insts []gantry.Instance
	for i, dep := range deps {
		done, err := d.waitRollout(ctx, dep.Namespace, dep.Name)
		if err != nil {
			return nil, err
		}
		more, err := d.instancesOf(ctx, done, specs[i].Spec.Service)
		if err != nil {
			return nil, err
		}
		insts = append(insts, more...)
	}
	if s.Slot != active {
		var web []string
		for _, svc := range specs {
			if !svc.HTTP {
				continue
			}
			web = append(web, svc.Spec.Service)
			ns := d.namespace(s.Runtime, s.App, s.Env)
			if err := d.applyService(ctx, serviceObject(ns, previewName(s.App, svc.Spec.Service), RolePreview, svc.Spec, s.Slot)); err != nil {
				return nil, err
			}
		}
		// Testers and verify checks reach the candidate by its preview hosts.
		if err := d.applyRouting(ctx, s.SlotRef, hostService(web), RolePreview); err != nil {
			return nil, err
		}
	}
	return insts, nil
}

// instancesOf returns one Instance per ready pod of a rolled-out Deployment.
func (d *Driver) instancesOf(ctx context.Context, dep *appsv1.Deployment, service string) ([]gantry.Instance, error) {
	pods, err := d.podsOf(ctx, dep)
	if err != nil {
		return nil, err
	}
	port := containerPort(dep)
	insts := make([]gantry.Instance, 0, deref(dep.Spec.Replicas))
	for i := range int(deref(dep.Spec.Replicas)) {
		inst := gantry.Instance{
			Service:   service,
			Index:     i,
			Handle:    handle{Namespace: dep.Namespace, Deployment: dep.Name, UID: string(dep.UID), Index: i}.String(),
			StartedAt: d.now(),
		}
		if i < len(pods) {
			inst.Addr = podAddr(&pods[i], port)
			if t := pods[i].Status.StartTime; t != nil {
				inst.StartedAt = t.Time
			}
		}
		insts = append(insts, inst)
	}
	return insts, nil
}

// Switch implements gantry.SlotDriver. A standby scaled to zero is scaled
// up to its remembered count and rolled out first, so a rollback after
// keep-warm ended is slower but still never switches to nothing.
func (d *Driver) Switch(ctx context.Context, ref gantry.SlotRef) error {
	deps, err := d.slotDeployments(ctx, ref)
	if err != nil {
		return err
	}
	if len(deps) == 0 {
		return gantry.Errorf(gantry.ENOTFOUND, "kubernetes: slot %s of %s/%s runs nothing", ref.Slot, ref.App, ref.Env)
	}
	for i := range deps {
		dep := &deps[i]
		if deref(dep.Spec.Replicas) == 0 {
			n, _ := strconv.Atoi(dep.Annotations[AnnotationInstances])
			if n > 0 {
				if err := d.scale(ctx, dep.Namespace, dep.Name, int32(n)); err != nil {
					return err
				}
			}
		}
	}
	for _, dep := range deps {
		if _, err := d.waitRollout(ctx, dep.Namespace, dep.Name); err != nil {
			return err
		}
	}
	ns := d.namespace(ref.Runtime, ref.App, ref.Env)
	begin := d.now()
	var web []string
	for _, dep := range deps {
		if dep.Annotations[AnnotationHTTP] != "true" {
			continue
		}
		spec := gantry.InstanceSpec{App: ref.App, Env: ref.Env, Service: dep.Labels[LabelService]}
		web = append(web, spec.Service)
		if err := d.applyService(ctx, serviceObject(ns, serviceName(ref.App, spec.Service), RoleLive, spec, ref.Slot)); err != nil {
			return err
		}
		if err := d.applyService(ctx, serviceObject(ns, previewName(ref.App, spec.Service), RolePreview, spec, gantry.OtherSlot(ref.Slot))); err != nil {
			return err
		}
	}
	// After the Services: the hosts reach the slot as soon as they exist.
	// Under a new name (a rename), this claims the hosts; the old name's
	// objects are released afterwards (ReleaseHosts).
	if err := d.applyRouting(ctx, ref, hostService(web), RoleLive, RolePreview); err != nil {
		return err
	}
	if err := d.setActive(ctx, ref); err != nil {
		return err
	}
	d.stopOtherWorkers(ctx, ref)
	d.logger().Info("kubernetes: switched", "namespace", ns, "app", ref.App, "env", ref.Env, "slot", ref.Slot, "took", time.Since(begin))
	return nil
}

// stopOtherWorkers scales the other slot's workers (services without
// HTTP) to zero once ref's slot is live, as the other runtimes stop the old
// release's workers at a switch: two sets of workers would take jobs side
// by side, the old release's among them. Its web services stay warm for a
// rollback, whose Switch scales the workers up again (scale remembers the
// count). The switch has happened: a failure here is logged, not returned.
func (d *Driver) stopOtherWorkers(ctx context.Context, ref gantry.SlotRef) {
	other := ref
	other.Slot = gantry.OtherSlot(ref.Slot)
	deps, err := d.slotDeployments(ctx, other)
	if err != nil {
		d.logger().Warn("kubernetes: the other slot's workers keep running", "app", ref.App, "env", ref.Env, "slot", other.Slot, "err", err)
		return
	}
	for _, dep := range deps {
		if dep.Annotations[AnnotationHTTP] == "true" || deref(dep.Spec.Replicas) == 0 {
			continue
		}
		if err := d.scale(ctx, dep.Namespace, dep.Name, 0); err != nil {
			d.logger().Warn("kubernetes: the other slot's worker keeps running", "deployment", dep.Namespace+"/"+dep.Name, "err", err)
		}
	}
}

// scale sets a Deployment's replicas; scaling down to zero remembers the
// count for a later scale-up.
func (d *Driver) scale(ctx context.Context, ns, name string, n int32) error {
	deps := d.Client.deployments(ns)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := deps.Get(ctx, name)
		if err != nil {
			return err
		}
		if err := owned(&cur.ObjectMeta); err != nil {
			return err
		}
		if cur.Annotations == nil {
			cur.Annotations = map[string]string{}
		}
		remember := n
		if n == 0 {
			remember = deref(cur.Spec.Replicas)
		}
		if remember > 0 {
			cur.Annotations[AnnotationInstances] = strconv.Itoa(int(remember))
		}
		cur.Spec.Replicas = &n
		_, err = deps.Update(ctx, cur.Name, cur)
		return err
	})
	if err != nil && gantry.ErrorCode(err) == gantry.EINTERNAL {
		return apiError(err, "scale deployment %s/%s to %d", ns, name, n)
	}
	return err
}

// ActiveSlot implements gantry.SlotDriver, from the environment's state
// ConfigMap; the live Services' selectors agree with it after a Switch.
func (d *Driver) ActiveSlot(ctx context.Context, ref gantry.SlotRef) (string, error) {
	app, env := ref.App, ref.Env
	ns := d.namespace(ref.Runtime, app, env)
	cm, err := d.Client.configMaps(ns).Get(ctx, stateName(app))
	if apierrors.IsNotFound(err) {
		cm, err = d.Client.configMaps(ns).Get(ctx, legacyStateName(app, env))
	}
	if apierrors.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", apiError(err, "read active slot of %s/%s", app, env)
	}
	return cm.Data[activeKey], nil
}

func (d *Driver) setActive(ctx context.Context, ref gantry.SlotRef) error {
	ns := d.namespace(ref.Runtime, ref.App, ref.Env)
	cms := d.Client.configMaps(ns)
	name := stateName(ref.App)
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := cms.Get(ctx, name)
		if apierrors.IsNotFound(err) {
			_, err = cms.Create(ctx, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{
					LabelManagedBy: managedBy, LabelApp: labelValue(ref.App), LabelEnv: labelValue(ref.Env),
				}},
				Data: map[string]string{activeKey: ref.Slot},
			})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("configmaps"), name, err)
			}
			return err
		}
		if err != nil {
			return err
		}
		if cur.Data == nil {
			cur.Data = map[string]string{}
		}
		cur.Data[activeKey] = ref.Slot
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		cur.Labels[LabelEnv] = labelValue(ref.Env)
		_, err = cms.Update(ctx, cur.Name, cur)
		return err
	})
	if err != nil && gantry.ErrorCode(err) == gantry.EINTERNAL {
		return apiError(err, "record active slot of %s/%s", ref.App, ref.Env)
	}
	return err
}

// StopSlot implements gantry.SlotDriver.
func (d *Driver) StopSlot(ctx context.Context, ref gantry.SlotRef, remove bool) error {
	active, err := d.ActiveSlot(ctx, ref)
	if err != nil {
		return err
	}
	if active == ref.Slot {
		return gantry.Errorf(gantry.ECONFLICT, "kubernetes: slot %s of %s/%s takes traffic: switch away from it first", ref.Slot, ref.App, ref.Env)
	}
	deps, err := d.slotDeployments(ctx, ref)
	if err != nil {
		return err
	}
	for _, dep := range deps {
		if remove {
			err = d.deleteDeployment(ctx, dep.Namespace, dep.Name)
			if err == nil && dep.Annotations[AnnotationHTTP] == "true" {
				err = d.deleteSlotService(ctx, dep.Namespace, slotServiceName(ref.App, dep.Labels[LabelService], ref.Slot))
			}
		} else {
			err = d.scale(ctx, dep.Namespace, dep.Name, 0)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
