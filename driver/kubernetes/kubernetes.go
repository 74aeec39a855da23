// Package kubernetes is Gantry's runtime driver for a Kubernetes (or
// OpenShift) cluster. An environment maps to a namespace, a slot to one
// Deployment per service (<app>-<service>-<slot>), and blue-green traffic to
// a Service per HTTP service whose selector names the active slot; a preview
// Service selects the other slot. The environment's hosts are routing
// objects it owns (Ingress, OpenShift Route or Gateway API HTTPRoute). An
// environment is its namespace: objects are named and selected without the
// environment's name, which a rename changes.
//
// It speaks to the API server only (client-go) and waits for rollouts by
// watching Deployments. It must not build or push images (releases arrive as
// image references by digest), must not touch objects it did not label as
// its own, and must never write a variable's value anywhere but a Secret.
package kubernetes

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Labels and annotations Gantry puts on what it creates. Objects are found
// again by these after a restart; nothing is recreated.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelApp       = "gantry.dev/app"
	LabelEnv       = "gantry.dev/env"
	LabelSlot      = "gantry.dev/slot"
	LabelService   = "gantry.dev/service"
	LabelRelease   = "gantry.dev/release"
	LabelRole      = "gantry.dev/role" // "live" or "preview" on Services

	// AnnotationInstances remembers a slot's replicas while it is scaled
	// to zero, so a rollback can scale it up again.
	AnnotationInstances = "gantry.dev/instances"
	AnnotationRelease   = "gantry.dev/release-id" // the full ID; labels are cut to 63 characters
	AnnotationHTTP      = "gantry.dev/http"
	AnnotationVarsHash  = "gantry.dev/vars-sha256" // rolls pods when variables change; never the values
	// AnnotationInstance is set on a pod by Start: the instance index
	// that claimed it (see claimPod).
	AnnotationInstance = "gantry.dev/instance"

	managedBy = "gantry"
)

// Defaults.
const (
	DefaultProgressDeadline = 10 * time.Minute
	defaultWait             = 15 * time.Minute
)

// Driver runs slots on a cluster. The zero value is not usable: set Client.
type Driver struct {
	Client *Client
	// Namespace is the namespace of an environment whose runtime settings
	// name none; empty means "<app>-<env>".
	Namespace string
	// CreateNamespace creates a missing namespace (which needs a
	// cluster-level permission); otherwise a missing one is an error.
	CreateNamespace bool
	// ProgressDeadline is each Deployment's progressDeadlineSeconds: a
	// rollout that makes no progress for this long fails.
	ProgressDeadline time.Duration
	// ImagePullSecret, when set, is named in every pod.
	ImagePullSecret string
	// StorageClass is the storage class of the claims of persistent
	// directories; empty: the cluster's default class. It must provide
	// ReadWriteMany volumes (see docs/kubernetes.md).
	StorageClass string
	// PersistSize is the storage each claim asks for; empty means
	// DefaultPersistSize.
	PersistSize string
	// PersistCopyImage is the image of the pods that copy persistent
	// directories into a clone when its runtime.copy_image names none;
	// empty means DefaultCopyImage.
	PersistCopyImage string
	// InternalRegistry is where the cluster's pods pull image streams
	// from (runtime.images: imagestream) when a stream's status does not
	// say; empty means DefaultInternalRegistry.
	InternalRegistry string
	// CopyImage copies an image by digest into another repository and
	// returns the copy's reference (runtime.registry); nil: images are
	// never copied, and an environment that needs a copy is refused.
	CopyImage func(ctx context.Context, src, dstRepo string) (string, error)
	Logger    *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

var (
	_ gantry.Driver     = (*Driver)(nil)
	_ gantry.SlotDriver = (*Driver)(nil)
)

// New returns a driver for the cluster cfg points at.
func New(cfg *rest.Config) (*Driver, error) {
	c, err := NewClient(cfg)
	if err != nil {
		return nil, err
	}
	return &Driver{Client: c}, nil
}

// ConfigFromKubeconfig loads a client configuration: path when set, else
// the in-cluster service account when running in a pod, else the usual
// kubeconfig rules ($KUBECONFIG, ~/.kube/config).
func ConfigFromKubeconfig(path string) (*rest.Config, error) {
	if path == "" {
		if cfg, err := rest.InClusterConfig(); err == nil {
			return cfg, nil
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		return nil, gantry.Errorf(gantry.EINVALID, "kubeconfig: %v", err)
	}
	return cfg, nil
}

// Name implements gantry.Driver.
func (d *Driver) Name() string { return "kubernetes" }

func (d *Driver) logger() *slog.Logger {
	if d.Logger != nil {
		return d.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// namespace is an environment's namespace: its runtime.namespace, or the
// driver's default, or "<app>-<env>".
func (d *Driver) namespace(rt gantry.RuntimeSpec, app, env string) string {
	switch {
	case rt.Namespace != "":
		return rt.Namespace
	case d.Namespace != "":
		return d.Namespace
	}
	return dnsName(app + "-" + env)
}

func (d *Driver) progressDeadline() time.Duration {
	if d.ProgressDeadline > 0 {
		return d.ProgressDeadline
	}
	return DefaultProgressDeadline
}

// deploymentName is the Deployment of one service in one slot.
func deploymentName(app, service, slot string) string {
	return dnsName(app + "-" + service + "-" + slot)
}

// serviceName is the Service that takes an HTTP service's live traffic;
// the preview Service adds "-preview".
func serviceName(app, service string) string { return dnsName(app + "-" + service) }

func previewName(app, service string) string { return dnsName(app + "-" + service + "-preview") }

// stateName is the ConfigMap that records the active slot, so that an
// environment of workers only (no Service to read it from) has one too.
// Like every object of an environment it is named without the
// environment's name, which a rename changes: the namespace is the
// environment's (one environment of an app per namespace).
func stateName(app string) string { return dnsName("gantry-" + app) }

// legacyStateName is where drivers before renames worked recorded it.
func legacyStateName(app, env string) string { return dnsName("gantry-" + app + "-" + env) }

var notDNS = lazyre.New(`[^a-z0-9-]+`)

// dnsName makes s a valid object name (RFC 1123 label, 63 characters); a
// long name keeps a hash of the whole so two long names do not collide.
func dnsName(s string) string {
	s = strings.Trim(notDNS.ReplaceAllString(strings.ToLower(s), "-"), "-")
	if len(s) <= 63 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return strings.TrimRight(s[:54], "-") + "-" + hex.EncodeToString(sum[:])[:8]
}

var notLabel = lazyre.New(`[^A-Za-z0-9._-]+`)

// labelValue makes s a valid label value: release IDs may hold characters
// labels may not, and the full ID is kept in an annotation.
func labelValue(s string) string {
	s = notLabel.ReplaceAllString(s, "_")
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.Trim(s, "._-")
}

// slotLabels select the pods of one service in one slot; they are the
// Deployment's (immutable) selector, so neither the release nor the
// environment's name (a rename changes it; the namespace is the
// environment's) is among them.
func slotLabels(app, service, slot string) map[string]string {
	return map[string]string{
		LabelApp:     labelValue(app),
		LabelService: labelValue(service),
		LabelSlot:    labelValue(slot),
	}
}

// ensureNamespace makes sure ns exists when the driver may create it:
// it creates it when it has the right to.
func (d *Driver) ensureNamespace(ctx context.Context, ns string) error {
	if !d.CreateNamespace {
		return nil
	}
	_, err := d.Client.namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{LabelManagedBy: managedBy}},
	})
	switch {
	case err == nil, apierrors.IsAlreadyExists(err):
		return nil
	case apierrors.IsForbidden(err):
		// Rights in the namespace only (the Role of docs/kubernetes.md):
		// it must exist already, and if it does not, the first call in it
		// says so ("namespaces … not found").
		return nil
	}
	return apiError(err, "create namespace %s", ns)
}

// apiError turns an API error into a coded one, keeping the server's words.
func apiError(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	switch {
	case apierrors.IsNotFound(err):
		return gantry.Errorf(gantry.ENOTFOUND, "%s: %v", what, err)
	case apierrors.IsForbidden(err):
		return gantry.Errorf(gantry.EFORBIDDEN, "%s: %v (see docs/kubernetes.md for the Role Gantry needs)", what, err)
	case apierrors.IsConflict(err), apierrors.IsAlreadyExists(err):
		return gantry.Errorf(gantry.ECONFLICT, "%s: %v", what, err)
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return gantry.Errorf(gantry.EINVALID, "%s: %v", what, err)
	case apierrors.IsTimeout(err), apierrors.IsServerTimeout(err), apierrors.IsServiceUnavailable(err):
		return gantry.Errorf(gantry.EUNAVAILABLE, "%s: %v", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}
