package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

const (
	containerPortName = "http"
	servicePort       = 80 // of the live and preview Services
)

// validate refuses a spec the cluster could only fail on later, before any
// object is touched: the active slot stays as it is.
func validate(spec gantry.InstanceSpec) error {
	if spec.App == "" || spec.Env == "" || spec.Service == "" {
		return gantry.Errorf(gantry.EINVALID, "kubernetes: spec needs app, env and service")
	}
	if spec.Slot != gantry.SlotBlue && spec.Slot != gantry.SlotGreen {
		return gantry.Errorf(gantry.EINVALID, "kubernetes: slot %q is neither blue nor green", spec.Slot)
	}
	img := spec.Artifact.Image
	if img == "" {
		return gantry.Errorf(gantry.EINVALID, "kubernetes: service %s has no image: the kubernetes driver runs image releases only (services need a docker: build)", spec.Service)
	}
	// By digest only, so what runs is byte-identical to what was tested:
	// a tag could move between test and prod.
	repo, digest, ok := strings.Cut(img, "@")
	if !ok || repo == "" || !validDigest(digest) {
		return gantry.Errorf(gantry.EINVALID, "kubernetes: image %q of service %s is not a reference by digest (repository@sha256:<64 hex>)", img, spec.Service)
	}
	if spec.Artifact.Digest != "" && spec.Artifact.Digest != digest {
		return gantry.Errorf(gantry.EINVALID, "kubernetes: image %q does not carry the release's digest %s", img, spec.Artifact.Digest)
	}
	if spec.Port < 0 || spec.Port > 65535 {
		return gantry.Errorf(gantry.EINVALID, "kubernetes: port %d out of range", spec.Port)
	}
	if err := validatePersist(spec); err != nil {
		return err
	}
	_, err := spec.Environ(nil)
	return err
}

func validDigest(d string) bool {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(hexPart) != 64 {
		return false
	}
	_, err := hex.DecodeString(hexPart)
	return err == nil && strings.ToLower(hexPart) == hexPart
}

// envVars are the instance's variables as gantry.InstanceSpec.Environ
// makes them for every driver (HOST is 0.0.0.0: a pod listens on its own
// address), less GANTRY_INSTANCE: the replicas of a Deployment are alike.
func envVars(spec gantry.InstanceSpec) (map[string]string, error) {
	env, err := spec.EnvironOn(nil, gantry.ListenAll) // a pod is reached on its own address
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(env))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	delete(m, "GANTRY_INSTANCE")
	return m, nil
}

// varsHash changes when a variable's value does, without revealing it.
func varsHash(vars map[string]string) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(vars[k]))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))
}

// secretObject holds the instance's variables: values (and resolved
// secrets) go to a Secret referenced by the pods, never into the
// Deployment, which many more people may read.
func secretObject(ns, name string, spec gantry.InstanceSpec, vars map[string]string) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:      name + "-env",
			Namespace: ns,
			Labels:    objectLabels(spec),
		},
		Type:       corev1.SecretTypeOpaque,
		StringData: vars,
	}
}

func objectLabels(spec gantry.InstanceSpec) map[string]string {
	l := slotLabels(spec.App, spec.Service, spec.Slot)
	l[LabelManagedBy] = managedBy
	l[LabelEnv] = labelValue(spec.Env)
	l[LabelRelease] = labelValue(spec.ReleaseID)
	return l
}

// deploymentObject is the desired Deployment of one service in one slot.
func (d *Driver) deploymentObject(ns, name string, spec gantry.InstanceSpec, replicas int32, http bool, vars map[string]string) *appsv1.Deployment {
	labels := objectLabels(spec)
	annotations := map[string]string{
		AnnotationRelease:   spec.ReleaseID,
		AnnotationHTTP:      strconv.FormatBool(http),
		AnnotationInstances: strconv.Itoa(int(replicas)),
	}
	container := corev1.Container{
		Name:            dnsName(spec.Service),
		Image:           spec.Artifact.Image,
		ImagePullPolicy: corev1.PullIfNotPresent, // a digest never changes
		EnvFrom: []corev1.EnvFromSource{{
			SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: name + "-env"}},
		}},
	}
	if spec.Command != "" {
		container.Command = []string{"/bin/sh", "-c", spec.Command}
	}
	if spec.Port > 0 {
		container.Ports = []corev1.ContainerPort{{Name: containerPortName, ContainerPort: int32(spec.Port), Protocol: corev1.ProtocolTCP}}
		container.ReadinessProbe = readinessProbe(spec.Health)
	}
	grace := int64(30)
	if spec.Stop.Timeout > 0 {
		grace = int64((spec.Stop.Timeout + time.Second - 1) / time.Second)
	}
	pod := corev1.PodSpec{
		Containers:                    []corev1.Container{container},
		TerminationGracePeriodSeconds: &grace,
		// Pods do not need to talk to the API server.
		AutomountServiceAccountToken: new(false),
	}
	mountPersist(&pod, spec)
	if d.ImagePullSecret != "" {
		pod.ImagePullSecrets = []corev1.LocalObjectReference{{Name: d.ImagePullSecret}}
	}
	deadline := int32(d.progressDeadline() / time.Second)
	if deadline < 1 {
		deadline = 1
	}
	// Never less than the full count available during an update of the
	// slot: the slot may be the active one when a hotfix rolls through it.
	maxUnavailable := intstr.FromInt32(0)
	maxSurge := intstr.FromString("25%")
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Replicas:                &replicas,
			Selector:                &metav1.LabelSelector{MatchLabels: slotLabels(spec.App, spec.Service, spec.Slot)},
			ProgressDeadlineSeconds: &deadline,
			RevisionHistoryLimit:    new(int32(2)),
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable, MaxSurge: &maxSurge},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels:      labels,
					Annotations: map[string]string{AnnotationRelease: spec.ReleaseID, AnnotationVarsHash: varsHash(vars)},
				},
				Spec: pod,
			},
		},
	}
}

// readinessProbe turns the service's health check into the kubelet's: the
// pod is an endpoint of the Service only while it passes.
func readinessProbe(h gantry.HealthCheck) *corev1.Probe {
	h = h.WithDefaults()
	p := &corev1.Probe{
		PeriodSeconds:    seconds(h.Interval, 1),
		TimeoutSeconds:   seconds(h.Timeout, 1),
		SuccessThreshold: int32(h.HealthyAfter),
		FailureThreshold: int32(h.UnhealthyAfter),
	}
	if h.Path != "" {
		p.HTTPGet = &corev1.HTTPGetAction{Path: h.Path, Port: intstr.FromString(containerPortName)}
	} else {
		p.TCPSocket = &corev1.TCPSocketAction{Port: intstr.FromString(containerPortName)}
	}
	return p
}

// seconds rounds up to whole seconds, the probe's unit.
func seconds(d time.Duration, least int32) int32 {
	s := int32((d + time.Second - 1) / time.Second)
	return max(s, least)
}

// serviceObject is the live or preview Service of an HTTP service.
func serviceObject(ns, name, role string, spec gantry.InstanceSpec, slot string) *corev1.Service {
	labels := map[string]string{
		LabelManagedBy: managedBy,
		LabelApp:       labelValue(spec.App),
		LabelEnv:       labelValue(spec.Env),
		LabelService:   labelValue(spec.Service),
		LabelRole:      role,
	}
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: slotLabels(spec.App, spec.Service, slot),
			Ports: []corev1.ServicePort{{
				Name:       containerPortName,
				Port:       servicePort,
				TargetPort: intstr.FromString(containerPortName),
				Protocol:   corev1.ProtocolTCP,
			}},
		},
	}
}
