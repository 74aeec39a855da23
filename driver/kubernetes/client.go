package kubernetes

import (
	"context"
	"fmt"
	"io"
	"sync"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
)

// Client is the driver's connection to one API server: a REST client per
// API group whose typed objects it uses (core/v1, apps/v1, batch/v1), and a dynamic
// client for the routing objects (Ingress, and what custom resource
// definitions add: OpenShift Routes, Gateway API HTTPRoutes).
//
// It replaces client-go's generated clientset on purpose: that one imports
// k8s.io/client-go/kubernetes/scheme, whose init registers every built-in
// API group (several milliseconds) in every gantry command, the CLI verbs
// included. The scheme here holds three groups and is built on first use.
type Client struct {
	core, apps, batch rest.Interface
	dynamic           dynamic.Interface
}

// localScheme knows the groups the driver reads and writes, and the
// meta/v1 options and status in each.
var localScheme = sync.OnceValues(func() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"})
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme} {
		if err := add(s); err != nil {
			return nil, err
		}
	}
	return s, nil
})

func parameterCodec() runtime.ParameterCodec {
	s, _ := localScheme() // NewClient saw it build
	return runtime.NewParameterCodec(s)
}

// NewClient connects to the API server cfg names. Nothing is sent yet.
func NewClient(cfg *rest.Config) (*Client, error) {
	s, err := localScheme()
	if err != nil {
		return nil, fmt.Errorf("kubernetes scheme: %w", err)
	}
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	codecs := serializer.NewCodecFactory(s).WithoutConversion()
	group := func(gv schema.GroupVersion, apiPath string) (rest.Interface, error) {
		c := rest.CopyConfig(cfg)
		c.GroupVersion = &gv
		c.APIPath = apiPath
		c.NegotiatedSerializer = codecs
		if c.UserAgent == "" {
			c.UserAgent = rest.DefaultKubernetesUserAgent()
		}
		return rest.RESTClientForConfigAndClient(c, hc)
	}
	var c Client
	if c.core, err = group(corev1.SchemeGroupVersion, "/api"); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if c.apps, err = group(appsv1.SchemeGroupVersion, "/apis"); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if c.batch, err = group(batchv1.SchemeGroupVersion, "/apis"); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if c.dynamic, err = dynamic.NewForConfigAndClient(cfg, hc); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return &c, nil
}

// objects is one namespaced resource of a typed group: T its object, L its
// list, PT and PL their pointers.
type objects[T, L any, PT interface {
	*T
	runtime.Object
}, PL interface {
	*L
	runtime.Object
}] struct {
	rc       rest.Interface
	ns, name string // namespace ("" for cluster-scoped) and resource
}

// req aims r at the resource; a cluster-scoped one (namespaces) names no
// namespace, which client-go refuses for an empty one.
func (o objects[T, L, PT, PL]) req(r *rest.Request) *rest.Request {
	if o.ns != "" {
		r = r.Namespace(o.ns)
	}
	return r.Resource(o.name)
}

func (o objects[T, L, PT, PL]) Get(ctx context.Context, name string) (PT, error) {
	out := PT(new(T))
	err := o.req(o.rc.Get()).Name(name).Do(ctx).Into(out)
	return out, err
}

func (o objects[T, L, PT, PL]) Create(ctx context.Context, obj PT) (PT, error) {
	out := PT(new(T))
	err := o.req(o.rc.Post()).Body(obj).Do(ctx).Into(out)
	return out, err
}

func (o objects[T, L, PT, PL]) Update(ctx context.Context, name string, obj PT) (PT, error) {
	out := PT(new(T))
	err := o.req(o.rc.Put()).Name(name).Body(obj).Do(ctx).Into(out)
	return out, err
}

func (o objects[T, L, PT, PL]) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return o.req(o.rc.Delete()).Name(name).Body(&opts).Do(ctx).Error()
}

func (o objects[T, L, PT, PL]) List(ctx context.Context, opts metav1.ListOptions) (PL, error) {
	out := PL(new(L))
	err := o.req(o.rc.Get()).VersionedParams(&opts, parameterCodec()).Do(ctx).Into(out)
	return out, err
}

func (o objects[T, L, PT, PL]) Watch(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return o.req(o.rc.Get()).VersionedParams(&opts, parameterCodec()).Watch(ctx)
}

// listWatch lists and watches the objects that sel (label selector) and
// fields (field selector) pick, for client-go's watch tools.
func (o objects[T, L, PT, PL]) listWatch(sel, fields string) cache.ListerWatcher {
	return &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
			opts.LabelSelector, opts.FieldSelector = sel, fields
			return o.List(ctx, opts)
		},
		WatchFuncWithContext: func(ctx context.Context, opts metav1.ListOptions) (watch.Interface, error) {
			opts.LabelSelector, opts.FieldSelector = sel, fields
			return o.Watch(ctx, opts)
		},
	}
}

type (
	deploymentsAPI = objects[appsv1.Deployment, appsv1.DeploymentList, *appsv1.Deployment, *appsv1.DeploymentList]
	podsAPI        = objects[corev1.Pod, corev1.PodList, *corev1.Pod, *corev1.PodList]
	eventsAPI      = objects[corev1.Event, corev1.EventList, *corev1.Event, *corev1.EventList]
	servicesAPI    = objects[corev1.Service, corev1.ServiceList, *corev1.Service, *corev1.ServiceList]
	secretsAPI     = objects[corev1.Secret, corev1.SecretList, *corev1.Secret, *corev1.SecretList]
	configMapsAPI  = objects[corev1.ConfigMap, corev1.ConfigMapList, *corev1.ConfigMap, *corev1.ConfigMapList]
	namespacesAPI  = objects[corev1.Namespace, corev1.NamespaceList, *corev1.Namespace, *corev1.NamespaceList]
	jobsAPI        = objects[batchv1.Job, batchv1.JobList, *batchv1.Job, *batchv1.JobList]
	claimsAPI      = objects[corev1.PersistentVolumeClaim, corev1.PersistentVolumeClaimList, *corev1.PersistentVolumeClaim, *corev1.PersistentVolumeClaimList]
)

func (c *Client) deployments(ns string) deploymentsAPI {
	return deploymentsAPI{c.apps, ns, "deployments"}
}
func (c *Client) pods(ns string) podsAPI             { return podsAPI{c.core, ns, "pods"} }
func (c *Client) events(ns string) eventsAPI         { return eventsAPI{c.core, ns, "events"} }
func (c *Client) services(ns string) servicesAPI     { return servicesAPI{c.core, ns, "services"} }
func (c *Client) secrets(ns string) secretsAPI       { return secretsAPI{c.core, ns, "secrets"} }
func (c *Client) configMaps(ns string) configMapsAPI { return configMapsAPI{c.core, ns, "configmaps"} }
func (c *Client) namespaces() namespacesAPI          { return namespacesAPI{c.core, "", "namespaces"} }
func (c *Client) jobs(ns string) jobsAPI             { return jobsAPI{c.batch, ns, "jobs"} }
func (c *Client) claims(ns string) claimsAPI {
	return claimsAPI{c.core, ns, "persistentvolumeclaims"}
}

// podLogs streams a pod's log.
func (c *Client) podLogs(ctx context.Context, ns, pod string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return c.core.Get().Namespace(ns).Resource("pods").Name(pod).SubResource("log").
		VersionedParams(opts, parameterCodec()).Stream(ctx)
}
