package gantry

import (
	"context"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

// InstanceSpec is what a driver needs to start one instance of a service.
type InstanceSpec struct {
	App       string   `json:"app"`
	Env       string   `json:"env"`
	Slot      string   `json:"slot"`
	Service   string   `json:"service"`
	Index     int      `json:"index"`
	ReleaseID string   `json:"release_id"`
	Artifact  Artifact `json:"artifact"`
	Command   string   `json:"command"`
	// Port is what the instance listens on ($PORT); 0 lets the driver pick
	// a free one, which it reports in Instance.Addr.
	Port   int         `json:"port"`
	Stop   StopSpec    `json:"stop"`
	Health HealthCheck `json:"health"`
	// Runtime is the environment's runtime settings, for the driver.
	Runtime RuntimeSpec `json:"runtime"`
	// Persist maps the name of each persistent directory of the service
	// to its directory on the host (also in Vars as GANTRY_PERSIST_<NAME>):
	// a runtime that isolates the file system makes it visible at that
	// same path.
	Persist map[string]string `json:"persist,omitempty"`
	// Env holds variables and resolved secrets. Drivers must not log it, and
	// it is never stored in the handle.
	Vars map[string]string `json:"-"`
}

// Instance is a started instance, as persisted by the orchestrator.
type Instance struct {
	Service string `json:"service"`
	Index   int    `json:"index"`
	// Addr is host:port where the instance listens (empty for workers).
	Addr string `json:"addr,omitempty"`
	// Handle is the driver's opaque, persisted handle, used to re-attach.
	Handle    string    `json:"handle"`
	StartedAt time.Time `json:"started_at"`
	// ReleaseID is the release the instance runs. A slot may mix releases
	// after a one-service deploy (deploy --only).
	ReleaseID string `json:"release_id,omitempty"`
	// Config fingerprints what the instance was started with: its
	// artifact's digest, its service's run settings and the environment's
	// variables and secrets (a digest, never their values). A deploy leaves
	// an instance running when the release would start it the same way.
	// The API does not show it: with what a reader can see, it would let a
	// guess at a weak secret be checked.
	Config string `json:"config,omitempty"`
	// Version is the version of its service the instance runs (the
	// service's own, else its release's).
	Version string `json:"version,omitempty"`
}

// Instance states reported by Driver.Inspect.
const (
	InstanceRunning = "running"
	InstanceExited  = "exited"
	InstanceGone    = "gone"
)

// InstanceState is what a driver knows of an instance.
type InstanceState struct {
	State    string `json:"state"`
	ExitCode int    `json:"exit_code,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// Driver starts and stops a slot's instances on a runtime. One shared test
// suite (internal/drivertest) runs against every driver.
//
// Drivers are built for restarts: Start returns an Instance whose Handle the
// orchestrator persists; after a restart of the server, Attach re-attaches
// to the running instance instead of launching a new one.
type Driver interface {
	Name() string
	Start(ctx context.Context, spec InstanceSpec) (Instance, error)
	// Stop sends the spec's signal, waits up to its timeout, then kills.
	// Stopping an instance that is already gone is not an error.
	Stop(ctx context.Context, inst Instance, stop StopSpec) error
	// Attach re-attaches to a running instance after a restart and returns
	// ENOTFOUND when it is no longer running.
	Attach(ctx context.Context, inst Instance) error
	Inspect(ctx context.Context, inst Instance) (InstanceState, error)
	// Logs writes the instance's recent output (the last tail lines, all
	// when tail <= 0) and, when follow, keeps writing until ctx ends.
	Logs(ctx context.Context, inst Instance, tail int, follow bool, w io.Writer) error
}

// ImagePlacer is a driver that needs an image where an environment runs it
// before it can run it: for a promotion between environments whose
// registries differ, the image is copied by digest and the digest is
// checked on arrival; on OpenShift with runtime.images: imagestream, the
// environment's image stream is tagged to the same digest instead. It
// returns the artifact to run (the same digest, possibly another
// repository).
type ImagePlacer interface {
	PlaceImage(ctx context.Context, a Artifact, to ImagePlace) (Artifact, error)
}

// ImagePlace is where a service's image is placed: the environment (its
// runtime settings: registry, namespace, images) and the release version
// the image is tagged with where the runtime tags it.
type ImagePlace struct {
	App     string      `json:"app"`
	Env     string      `json:"env"`
	Service string      `json:"service"`
	Version string      `json:"version"`
	Runtime RuntimeSpec `json:"runtime"`
}

// PortReserver is a driver whose instances listen on a host port it picks
// (InstanceSpec.Port 0): ReservePort hands out such a port ahead of Start,
// so that the addresses of a slot's services are known before any of them
// starts and each instance can be told where its siblings are (discovery).
// The port is not handed out again while an instance may start on it.
type PortReserver interface {
	ReservePort() (int, error)
}

// ImagePruner removes images that nothing keeps: keep is asked for each
// image reference and must cover every environment on the same engine.
type ImagePruner interface {
	PruneImages(ctx context.Context, keep func(ref string) bool) (removed []string, err error)
}

// InstanceLister is a driver that finds the instances it started for an
// environment by their identity (labels, or a record the driver writes
// before its Start returns), whether or not the orchestrator persisted
// their handles. A server killed between starting an instance and saving
// its handle would otherwise leave it running unknown to the state: at
// recovery the orchestrator adopts the found instances that belong to a
// slot its record keeps, and stops the others.
type InstanceLister interface {
	ListInstances(ctx context.Context, app, env string) ([]FoundInstance, error)
}

// FoundInstance is an instance a driver found by its identity. Its
// Instance carries the release it runs (ReleaseID) and a handle that
// Attach, Inspect and Stop take.
type FoundInstance struct {
	Instance Instance `json:"instance"`
	Slot     string   `json:"slot"`
	Running  bool     `json:"running"`
}

// Listen hosts: the interface an instance is told to listen on ($HOST).
const (
	// ListenLoopback: the instance shares the host's network (a process,
	// a container on the host network) and must not be reachable but
	// through the router.
	ListenLoopback = "127.0.0.1"
	// ListenAll: the instance has a network of its own (a container with a
	// published port, a pod), reached on its own address.
	ListenAll = "0.0.0.0"
)

// Environ returns an instance's environment, sorted: base (what the driver
// passes of its own, e.g. PATH), then the spec's Vars, then what Gantry
// sets, which wins: PORT, HOST (127.0.0.1), GANTRY_LISTEN (HOST:PORT),
// GANTRY_APP, GANTRY_ENV, GANTRY_SLOT, GANTRY_SERVICE, GANTRY_INSTANCE,
// GANTRY_RELEASE. A variable that cannot be passed is refused without
// quoting its value, which may be a secret.
func (spec InstanceSpec) Environ(base map[string]string) ([]string, error) {
	return spec.EnvironOn(base, ListenLoopback)
}

// EnvironOn is Environ for an instance that listens on host: a driver
// whose instances have a network of their own passes ListenAll.
func (spec InstanceSpec) EnvironOn(base map[string]string, host string) ([]string, error) {
	m := make(map[string]string, len(base)+len(spec.Vars)+9)
	for k, v := range base {
		m[k] = v
	}
	for k, v := range spec.Vars {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return nil, Errorf(EINVALID, "service %s: variable %q is not a valid environment variable", spec.Service, k)
		}
		m[k] = v
	}
	if spec.Port > 0 {
		m["PORT"] = strconv.Itoa(spec.Port)
		m["HOST"] = host
		m["GANTRY_LISTEN"] = net.JoinHostPort(host, m["PORT"])
	}
	m["GANTRY_APP"] = spec.App
	m["GANTRY_ENV"] = spec.Env
	m["GANTRY_SLOT"] = spec.Slot
	m["GANTRY_SERVICE"] = spec.Service
	m["GANTRY_INSTANCE"] = strconv.Itoa(spec.Index)
	m["GANTRY_RELEASE"] = spec.ReleaseID
	env := make([]string, 0, len(m))
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	return env, nil
}
