package gantry

import "time"

// Manifest is a decoded, validated and defaulted gantry.yml. The decoder
// (package manifest) fills it; everything else reads it.
type Manifest struct {
	App          string                      `json:"app"`
	Version      VersionScheme               `json:"version"`
	Services     map[string]*Service         `json:"services"`
	Verify       []VerifyCheck               `json:"verify,omitempty"`
	Database     *DatabaseSpec               `json:"database,omitempty"`
	Hooks        map[string][]Hook           `json:"hooks,omitempty"`
	Notify       []NotifyTarget              `json:"notify,omitempty"`
	Environments map[string]*EnvironmentSpec `json:"environments"`
	// Triggers say what a push or a merge request does; Previews how a
	// preview environment is made.
	Triggers []Trigger    `json:"triggers,omitempty"`
	Previews *PreviewSpec `json:"previews,omitempty"`
}

// VersionScheme says how a release's version is derived.
type VersionScheme struct {
	// Scheme is "semver" (--version, a VERSION file, or a vX.Y.Z tag) or
	// "calver" (YY.MM.R with hotfix letters, 16.03.1b).
	Scheme string `json:"scheme"`
}

// Service is one process type of an app.
type Service struct {
	Name      string        `json:"name"`
	Build     *BuildSpec    `json:"build,omitempty"`
	Docker    *DockerSpec   `json:"docker,omitempty"`
	Run       string        `json:"run"`
	HTTP      bool          `json:"http"`
	Instances int           `json:"instances"`
	Health    HealthCheck   `json:"health"`
	Stop      StopSpec      `json:"stop"`
	Order     int           `json:"order"`
	Ready     time.Duration `json:"ready_delay,omitempty"` // non-HTTP services without a health check
	// Route, when set, narrows the requests an http service takes under its
	// environment's hosts; a service without one takes every request that
	// no other service's route claims.
	Route *ServiceRoute `json:"route,omitempty"`
	// VersionFile is a file of the commit holding the service's own
	// version (a monorepo of versioned services); a tag
	// "<service>/v1.2.0" on the commit gives it too. Without either the
	// service has the release's version.
	VersionFile string `json:"version_file,omitempty"`
	// Requires maps another service of the app, or "app:<name>" for
	// another app's release on the environment of the same name, to a
	// version constraint (">=1.1.0"): a deploy that would break one is
	// refused before anything starts.
	Requires map[string]string `json:"requires,omitempty"`
	// Persist names directories whose files outlive a release: owned by
	// the environment, the same for both slots and every release, told to
	// each instance as GANTRY_PERSIST_<NAME> (see PersistDir).
	Persist []string `json:"persist,omitempty"`
}

// BuildSpec is how a service is built inside the clean export of a commit.
type BuildSpec struct {
	Command   string   `json:"command"`
	Artifacts []string `json:"artifacts"`
}

// DockerSpec builds a service as an image instead of a tarball.
type DockerSpec struct {
	Dockerfile string            `json:"dockerfile"`
	Context    string            `json:"context"`
	Target     string            `json:"target,omitempty"`
	Args       map[string]string `json:"args,omitempty"`
}

// StopSpec is how an instance is stopped: Signal, then SIGKILL after Timeout.
type StopSpec struct {
	Signal  string        `json:"signal"`
	Timeout time.Duration `json:"timeout"`
}

// VerifyCheck runs against a candidate through its preview host, before the switch.
type VerifyCheck struct {
	HTTP    *HTTPCheck `json:"http,omitempty"`
	Command string     `json:"command,omitempty"`
}

// HTTPCheck expects Status (and Contains in the body) from GET Path.
type HTTPCheck struct {
	Path     string `json:"path"`
	Status   int    `json:"status"`
	Contains string `json:"contains,omitempty"`
}

// DatabaseSpec declares an app's database and its migrations.
type DatabaseSpec struct {
	Engine     string `json:"engine"`
	Migrations struct {
		Engine string `json:"engine"`
		Dir    string `json:"dir,omitempty"`
		// Run is the app's own migration command (engine command), run in
		// the release's files with the environment's variables and secrets.
		Run string `json:"run,omitempty"`
		// Compatible says the app's migrations keep the previous release
		// working: deployed blue-green with no requests held.
		Compatible bool `json:"compatible,omitempty"`
	} `json:"migrations"`
	// MigrateOnStart: the app migrates its schema as it starts.
	MigrateOnStart bool `json:"migrate_on_start,omitempty"`
}

// AppMigrates says the app changes its own schema (its command, or at
// start) rather than through migrations Gantry reads.
func (d *DatabaseSpec) AppMigrates() bool {
	return d != nil && (d.MigrateOnStart || d.Migrations.Engine == MigrationEngineCommand)
}

// AppMigratesIncompatibly says a deploy that runs the app's migration must
// hold every request while it runs: nothing says the old release survives it.
func (d *DatabaseSpec) AppMigratesIncompatibly() bool {
	return d.AppMigrates() && !d.Migrations.Compatible
}

// Hook is a command or a webhook run around a phase.
type Hook struct {
	Command string   `json:"command,omitempty"`
	Webhook *Webhook `json:"webhook,omitempty"`
}

// Webhook is an HTTP call made by a hook.
type Webhook struct {
	URL    string `json:"url"`
	Method string `json:"method"`
}

// EnvironmentSpec is an environment as the manifest declares it.
type EnvironmentSpec struct {
	Hosts       []string          `json:"hosts"`
	Runtime     RuntimeSpec       `json:"runtime"`
	Strategy    string            `json:"strategy"`
	KeepWarm    time.Duration     `json:"keep_warm"`
	PromoteFrom string            `json:"promote_from,omitempty"`
	Vars        map[string]string `json:"vars,omitempty"`
	Secrets     []string          `json:"secrets,omitempty"`
	Approvals   *ApprovalPolicy   `json:"approvals,omitempty"`
	// HotfixApprovals, when set, replaces Approvals for a hotfix release (a
	// calendar version with hotfix letters, 16.03.1b, or one built from a
	// hotfix/ branch): the hotfix channel's shorter policy. The lock and the
	// freeze apply all the same.
	HotfixApprovals *ApprovalPolicy `json:"hotfix_approvals,omitempty"`
	// Freeze lists windows in which deploys, promotions and rollbacks are
	// refused unless a break-glass reason is given (and recorded).
	Freeze []FreezeWindow `json:"freeze,omitempty"`
	// MigrationsViaClone requires a migration (a release whose major or
	// minor version differs from the one running) to reach this environment
	// only by promotion from an environment cloned from it.
	MigrationsViaClone bool `json:"migrations_via_clone,omitempty"`
	// Watch, when set, keeps watching the route after a switch and rolls
	// the switch back if the new release answers worse than the old one.
	Watch *WatchSpec `json:"watch,omitempty"`
	// Canary holds the steps of strategy canary.
	Canary *CanarySpec `json:"canary,omitempty"`
}

// WatchSpec bounds a release's figures during the watch after its switch.
type WatchSpec struct {
	// Window is how long the route is watched after the switch.
	Window time.Duration `json:"window"`
	// MaxErrorRate is the largest share of 5xx answers (0..1) the new
	// release may give; the previous release's own rate raises it.
	MaxErrorRate float64 `json:"max_error_rate"`
	// MaxLatencyRatio bounds the new release's mean latency as a multiple
	// of the previous release's; 0 leaves latency unchecked.
	MaxLatencyRatio float64 `json:"max_latency_ratio"`
	// MinRequests is how many requests a figure needs before it is judged.
	MinRequests int `json:"min_requests"`
}

// FreezeWindow is a time range in which changes to an environment are refused.
type FreezeWindow struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	Reason string    `json:"reason,omitempty"`
}

// RuntimeSpec names a driver and its settings.
type RuntimeSpec struct {
	Driver    string `json:"driver"`
	Registry  string `json:"registry,omitempty"`
	Namespace string `json:"namespace,omitempty"`
	// Routing is the kind of object that serves the environment's hosts on
	// a runtime that routes its own traffic (Kubernetes: RoutingIngress,
	// RoutingRoute, RoutingHTTPRoute or RoutingNone; "" is RoutingIngress).
	Routing string `json:"routing,omitempty"`
	// Gateway is the Gateway ("namespace/name", or "name" in the
	// environment's namespace) that HTTPRoutes attach to.
	Gateway string `json:"gateway,omitempty"`
	// Traffic says what takes an environment's requests on a runtime that
	// routes its own traffic (Kubernetes): TrafficCluster ("" too) or
	// TrafficRouter.
	Traffic string `json:"traffic,omitempty"`
	// Images is how a promoted image reaches the environment on a runtime
	// that pulls images (ImagesRegistry, ImagesImageStream; "" is
	// ImagesRegistry).
	Images string `json:"images,omitempty"`
	// StorageClass and PersistSize are what the claim of a persistent
	// directory asks for on Kubernetes ("": the cluster's default class,
	// and 1Gi). They apply when a claim is created; an existing claim
	// keeps what it has, and its data.
	StorageClass string `json:"storage_class,omitempty"`
	PersistSize  string `json:"persist_size,omitempty"`
	// CopyImage is the image of the pods that copy persistent directories
	// into a clone (gantry env clone --with-data) on Kubernetes; it needs
	// sh, tar, gzip, wget and httpd (busybox has them). "": the driver's
	// default.
	CopyImage string `json:"copy_image,omitempty"`
}

// What takes an environment's requests on a runtime that routes its own
// traffic (RuntimeSpec.Traffic).
const (
	// TrafficCluster: the cluster's Services and routing objects; verify
	// checks reach the candidate through the runtime's preview (the API
	// server's service proxy), and there is no post-switch watch.
	TrafficCluster = "cluster"
	// TrafficRouter: Gantry's router in front of the pods (their addresses
	// must be reachable from it): verify through its preview host, the
	// watch from its per-target figures, drains and pauses as on the
	// other runtimes.
	TrafficRouter = "router"
)

// RouterInFront says Gantry's router takes the environment's requests
// even though its runtime could route them itself.
func (r RuntimeSpec) RouterInFront() bool { return r.Traffic == TrafficRouter }

// Ways an image reaches an environment (RuntimeSpec.Images).
const (
	// ImagesRegistry: the image is pulled from where the release names it,
	// copied by digest into runtime.registry when that is set.
	ImagesRegistry = "registry"
	// ImagesImageStream: the environment's OpenShift image stream (one per
	// service, in its project) is tagged to the image's digest, and the
	// workloads run it from the cluster's internal registry by that digest.
	ImagesImageStream = "imagestream"
)

// Kinds of routing object (RuntimeSpec.Routing).
const (
	RoutingIngress   = "ingress"   // networking.k8s.io/v1 Ingress
	RoutingRoute     = "route"     // route.openshift.io/v1 Route
	RoutingHTTPRoute = "httproute" // gateway.networking.k8s.io/v1 HTTPRoute
	RoutingNone      = "none"      // hosts are served by objects Gantry does not manage
)

// ApprovalPolicy requires N approvals from the given roles.
type ApprovalPolicy struct {
	Required int      `json:"required"`
	Roles    []string `json:"roles,omitempty"`
}

// Strategies.
const (
	StrategyBlueGreen = "bluegreen"
	StrategyRestart   = "restart"
	// StrategyMaintenance is blue-green for a schema change that cannot be
	// made compatible: the router holds writes while every pending migration
	// is applied and the new release takes over.
	StrategyMaintenance = "maintenance"
)

// Defaults that the manifest decoder applies.
const (
	DefaultKeepWarm     = 10 * time.Minute
	DefaultStopTimeout  = 30 * time.Second
	DefaultHealthPath   = "/up"
	DefaultInstances    = 1
	DefaultHealthPeriod = time.Second
	DefaultHealthWait   = 2 * time.Second

	DefaultWatchWindow       = 2 * time.Minute
	DefaultWatchErrorRate    = 0.05
	DefaultWatchLatencyRatio = 2.0
	DefaultWatchMinRequests  = 20
)

// ServicesInOrder returns the manifest's services sorted by order group, then name.
func (m *Manifest) ServicesInOrder() []*Service {
	out := make([]*Service, 0, len(m.Services))
	for _, s := range m.Services {
		out = append(out, s)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && serviceLess(out[j], out[j-1]); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func serviceLess(a, b *Service) bool {
	if a.Order != b.Order {
		return a.Order < b.Order
	}
	return a.Name < b.Name
}
