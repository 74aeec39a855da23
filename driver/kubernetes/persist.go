package kubernetes

import (
	"cmp"
	"context"
	"maps"
	"path"
	"slices"

	"github.com/gantry-dev/gantry"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// Persistent directories (services.<service>.persist) are one
// PersistentVolumeClaim per environment (its namespace) and directory,
// mounted by every pod of both slots that names the directory, at the path
// the orchestrator gives in InstanceSpec.Persist (and GANTRY_PERSIST_<NAME>).
// The claim asks for ReadWriteMany, since the pods of both slots (and of
// a rolling update) mount it at once, on any node. It is created once and
// never changed nor deleted by the driver: a deploy, a switch, a rollback
// and a deletion of the environment's workloads keep it; only PurgePersist
// (gantry env delete --purge) deletes it.

// DefaultPersistSize is the storage a claim asks for when neither the
// environment (runtime.persist_size) nor the driver's PersistSize says.
const DefaultPersistSize = "1Gi"

// LabelPersist names the persistent directory a claim holds.
const LabelPersist = "gantry.dev/persist"

// claimName is the claim of persistent directory name of app; like every
// object of an environment it is named without the environment's name.
func claimName(app, name string) string { return dnsName(app + "-persist-" + name) }

// volumeName is the pod's volume of persistent directory name.
func volumeName(name string) string { return dnsName("persist-" + name) }

// validatePersist refuses a mount path the pod could not use.
func validatePersist(spec gantry.InstanceSpec) error {
	for name, dir := range spec.Persist {
		if !path.IsAbs(dir) || path.Clean(dir) == "/" {
			return gantry.Errorf(gantry.EINVALID, "kubernetes: persistent directory %s of service %s: mount path %q is not an absolute path below /", name, spec.Service, dir)
		}
	}
	return nil
}

// claimObject is the claim of persistent directory name in ns.
func (d *Driver) claimObject(ns string, spec gantry.InstanceSpec, name string) (*corev1.PersistentVolumeClaim, error) {
	size := cmp.Or(spec.Runtime.PersistSize, d.PersistSize, DefaultPersistSize)
	q, err := resource.ParseQuantity(size)
	if err != nil {
		return nil, gantry.Errorf(gantry.EINVALID, "kubernetes: persist size %q: %v", size, err)
	}
	c := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: claimName(spec.App, name), Namespace: ns, Labels: map[string]string{
			LabelManagedBy: managedBy,
			LabelApp:       labelValue(spec.App),
			LabelEnv:       labelValue(spec.Env),
			LabelPersist:   labelValue(name),
		}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: q}},
		},
	}
	if class := cmp.Or(spec.Runtime.StorageClass, d.StorageClass); class != "" {
		c.Spec.StorageClassName = &class
	}
	return c, nil
}

// ensureClaims creates the claims of spec's persistent directories that do
// not exist yet; an existing one is left as it is (its data with it), so a
// changed size or class applies to new claims only.
func (d *Driver) ensureClaims(ctx context.Context, ns string, spec gantry.InstanceSpec) error {
	for _, name := range slices.Sorted(maps.Keys(spec.Persist)) {
		want, err := d.claimObject(ns, spec, name)
		if err != nil {
			return err
		}
		cur, err := d.Client.claims(ns).Get(ctx, want.Name)
		if err == nil {
			if err := owned(&cur.ObjectMeta); err != nil {
				return err
			}
			continue
		}
		if !apierrors.IsNotFound(err) {
			return apiError(err, "read claim %s/%s", ns, want.Name)
		}
		if _, err := d.Client.claims(ns).Create(ctx, want); err != nil && !apierrors.IsAlreadyExists(err) {
			return apiError(err, "create claim %s/%s", ns, want.Name)
		}
		d.logger().Info("kubernetes: claim created", "namespace", ns, "claim", want.Name, "persist", name)
	}
	return nil
}

// mountPersist adds spec's persistent directories to the pod: a volume per
// claim, mounted at the path the instance is told.
func mountPersist(pod *corev1.PodSpec, spec gantry.InstanceSpec) {
	for _, name := range slices.Sorted(maps.Keys(spec.Persist)) {
		pod.Volumes = append(pod.Volumes, corev1.Volume{
			Name: volumeName(name),
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: claimName(spec.App, name),
			}},
		})
		c := &pod.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: volumeName(name), MountPath: spec.Persist[name]})
	}
}

// PurgePersist deletes the claims of the environment's persistent
// directories, and with them (by the storage class's reclaim policy) their
// data: gantry env delete --purge.
func (d *Driver) PurgePersist(ctx context.Context, ref gantry.SlotRef) error {
	ns := d.namespace(ref.Runtime, ref.App, ref.Env)
	sel := labels.SelectorFromSet(map[string]string{LabelManagedBy: managedBy, LabelApp: labelValue(ref.App)}).String() + "," + LabelPersist
	list, err := d.Client.claims(ns).List(ctx, metav1.ListOptions{LabelSelector: sel})
	if err != nil {
		return apiError(err, "list claims of %s/%s", ref.App, ref.Env)
	}
	for _, c := range list.Items {
		if err := d.Client.claims(ns).Delete(ctx, c.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return apiError(err, "delete claim %s/%s", ns, c.Name)
		}
		d.logger().Info("kubernetes: claim deleted", "namespace", ns, "claim", c.Name)
	}
	return nil
}
