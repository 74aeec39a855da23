// Package docker is the Docker Engine runtime driver and the image side of
// image releases: it runs each instance as a container of a release's image,
// referenced by digest, and builds, pushes, copies and prunes those images.
//
// A container is named gantry-<app>-<env>-<slot>-<service>-<n> and labelled
// with app, environment, slot, release, service and instance, so that a
// restarted server finds its instances again by the persisted handle (the
// container ID) or by labels, instead of starting them twice. Containers use
// host networking with PORT assigned, so traffic stays on 127.0.0.1; a port
// published on loopback is an option (Network: NetworkPublish). An engine on
// another host runs them on that host's address instead (advertise.go).
//
// It must never run an image by tag (a tag moves; a digest is what was
// tested), never log or return an instance's variables (they carry secrets;
// note that `docker inspect` shows a container's Env to whoever may use the
// Docker socket, which is root on the host anyway), never touch a container
// it did not label, and never remove an image that a running container uses
// or that the caller's keep function keeps. Registry traffic without the
// Engine (copying by digest) lives in the registry subpackage.
package docker

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/docker/registry"
	"github.com/gantry-dev/gantry/internal/lazyre"
	"github.com/gantry-dev/gantry/internal/portalloc"
)

var _ gantry.Driver = (*Driver)(nil)

// Labels set on every container the driver starts.
const (
	LabelApp      = "gantry.app"
	LabelEnv      = "gantry.env"
	LabelSlot     = "gantry.slot"
	LabelRelease  = "gantry.release"
	LabelService  = "gantry.service"
	LabelInstance = "gantry.instance"
	LabelPort     = "gantry.port"
)

// Network modes of a Driver.
const (
	// NetworkHost runs containers in the host's network namespace: the
	// instance listens on 127.0.0.1:$PORT as a process would.
	NetworkHost = "host"
	// NetworkPublish runs containers on the engine's default bridge and
	// publishes the container's $PORT on 127.0.0.1:$PORT; the instance must
	// listen on 0.0.0.0:$PORT inside its container.
	NetworkPublish = "publish"
)

// Attribute keys of the driver's log records.
const (
	attrInstance  = "instance"
	attrContainer = "container"
	attrImage     = "image"
	attrRelease   = "release"
	attrSignal    = "signal"
	attrError     = "error"
)

// Log options of every container: json-file can be read back by Logs on every
// engine version, whatever the daemon's default driver is.
var logConfig = container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "2"}}

// Driver runs instances as Docker containers. New returns one with a client;
// a Driver built by hand needs Client.
type Driver struct {
	Client *client.Client
	Logger *slog.Logger
	// Ports picks the port of an instance started without one (default
	// portalloc.Default, shared with the other drivers of the process).
	Ports *portalloc.Allocator
	// Network is NetworkHost (default) or NetworkPublish.
	Network string
	// Advertise is the address of the engine's host where instances listen
	// and are reached (advertise.go); empty: 127.0.0.1, an engine on the
	// server's own host. Set it with SetAdvertise.
	Advertise string
	// Now stamps Instance.StartedAt (default time.Now).
	Now func() time.Time

	// Registry copies images between registries (zero value: anonymous,
	// plain HTTP to loopback registries only).
	Registry registry.Client

	pullMu sync.Mutex
	pulls  map[string]*sync.Mutex // per image reference: one pull at a time
}

// New returns a driver of the engine at host ("unix:///var/run/docker.sock",
// "tcp://127.0.0.1:2375"; empty means DOCKER_HOST or the default socket). The
// API version is negotiated with the engine on first use, so Engine 20.10 and
// newer work. An engine on another host is reached over TLS as the docker
// CLI reaches it: DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem) and
// DOCKER_TLS_VERIFY=1.
func New(host string, logger *slog.Logger) (*Driver, error) {
	opts := []client.Opt{client.WithAPIVersionNegotiation(), client.WithTLSClientConfigFromEnv()}
	if host != "" {
		opts = append(opts, client.WithHost(host))
	} else {
		opts = append(opts, client.WithHostFromEnv())
	}
	cli, err := client.NewClientWithOpts(opts...)
	if err != nil {
		return nil, fmt.Errorf("docker driver: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Driver{Client: cli, Logger: logger}, nil
}

// Close releases the client's connections; running containers go on.
func (d *Driver) Close() error { return d.Client.Close() }

// Name is the runtime name used in manifests.
func (d *Driver) Name() string { return "docker" }

func (d *Driver) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// ContainerName is the name of an instance's container.
func ContainerName(app, env, slot, service string, index int) string {
	return fmt.Sprintf("gantry-%s-%s-%s-%s-%d", app, env, slot, service, index)
}

// Start pulls the spec's image if the engine lacks it (once at a time per
// image), creates the instance's container and starts it. It returns once the
// container runs; whether it serves is for the health checks to find out.
//
// A container of the same name that has exited is replaced. One that runs
// the same release is adopted instead of started twice (a server killed
// between starting it and persisting its handle starts it again); one that
// runs another release is a conflict.
func (d *Driver) Start(ctx context.Context, spec gantry.InstanceSpec) (gantry.Instance, error) {
	if err := validateSpec(spec); err != nil {
		return gantry.Instance{}, err
	}
	if n := d.network(); n != NetworkHost && n != NetworkPublish {
		return gantry.Instance{}, gantry.Errorf(gantry.EINVALID, "docker driver: network %q is neither %q nor %q", n, NetworkHost, NetworkPublish)
	}
	name := ContainerName(spec.App, spec.Env, spec.Slot, spec.Service, spec.Index)
	log := d.logger().With(attrInstance, name, attrRelease, spec.ReleaseID)
	if inst, ok, err := d.adopt(ctx, spec, name); err != nil || ok {
		if ok {
			log.Info("adopted a running container", attrContainer, shortID(inst.Handle))
		}
		return inst, err
	}
	if spec.Port == 0 {
		p, err := d.ports().Take()
		if err != nil {
			return gantry.Instance{}, fmt.Errorf("start %s: %w", name, err)
		}
		spec.Port = p
	}
	env, err := d.environ(spec)
	if err != nil {
		return gantry.Instance{}, err
	}
	if err := d.ensureImage(ctx, spec.Artifact.Image); err != nil {
		return gantry.Instance{}, fmt.Errorf("start %s: %w", name, err)
	}
	cfg, hostCfg := d.containerConfig(spec, env)
	created, err := d.Client.ContainerCreate(ctx, cfg, hostCfg, nil, nil, name)
	if cerrdefs.IsConflict(err) {
		return gantry.Instance{}, gantry.Errorf(gantry.ECONFLICT, "start %s: another start of the same instance is under way", name)
	} else if err != nil {
		return gantry.Instance{}, fmt.Errorf("start %s: create container: %w", name, err)
	}
	started := d.now()
	if err := d.Client.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		_ = d.Client.ContainerRemove(context.WithoutCancel(ctx), created.ID, container.RemoveOptions{Force: true})
		return gantry.Instance{}, fmt.Errorf("start %s: %w", name, err)
	}
	log.Info("instance started", attrContainer, shortID(created.ID), attrImage, spec.Artifact.Image)
	return d.instance(spec, created.ID, started), nil
}

func (d *Driver) ports() *portalloc.Allocator {
	if d.Ports != nil {
		return d.Ports
	}
	return portalloc.Default
}

func (d *Driver) network() string {
	if d.Network == "" {
		return NetworkHost
	}
	return d.Network
}

// adopt looks for a container of the instance's name: it removes one that
// has exited, and returns one that runs the same release.
func (d *Driver) adopt(ctx context.Context, spec gantry.InstanceSpec, name string) (gantry.Instance, bool, error) {
	c, err := d.Client.ContainerInspect(ctx, name)
	if cerrdefs.IsNotFound(err) {
		return gantry.Instance{}, false, nil
	} else if err != nil {
		return gantry.Instance{}, false, fmt.Errorf("start %s: %w", name, err)
	}
	if c.Config == nil || c.Config.Labels[LabelApp] != spec.App {
		return gantry.Instance{}, false, gantry.Errorf(gantry.ECONFLICT, "a container named %s exists and was not started by gantry", name)
	}
	if c.State != nil && (c.State.Running || c.State.Restarting || c.State.Paused) {
		if c.Config.Labels[LabelRelease] == spec.ReleaseID && c.Config.Image == spec.Artifact.Image {
			started, _ := time.Parse(time.RFC3339Nano, c.State.StartedAt)
			if p, err := strconv.Atoi(c.Config.Labels[LabelPort]); err == nil && spec.Port == 0 {
				spec.Port = p // the port it was started with
			}
			return d.instance(spec, c.ID, started), true, nil
		}
		return gantry.Instance{}, false, gantry.Errorf(gantry.ECONFLICT, "container %s already runs release %s", name, c.Config.Labels[LabelRelease])
	}
	if err := d.Client.ContainerRemove(ctx, c.ID, container.RemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return gantry.Instance{}, false, fmt.Errorf("start %s: remove the exited container: %w", name, err)
	}
	return gantry.Instance{}, false, nil
}

// instance is the Instance of spec's container id, at its address.
func (d *Driver) instance(spec gantry.InstanceSpec, id string, started time.Time) gantry.Instance {
	inst := gantry.Instance{Service: spec.Service, Index: spec.Index, Handle: id, StartedAt: started}
	if spec.Port > 0 {
		inst.Addr = net.JoinHostPort(d.listenHost(), strconv.Itoa(spec.Port))
	}
	return inst
}

// containerConfig is the container of one instance. The stop signal and
// timeout are recorded on the container too, so that a `docker stop` by hand
// stops it the way Gantry would.
func (d *Driver) containerConfig(spec gantry.InstanceSpec, env []string) (*container.Config, *container.HostConfig) {
	cfg := &container.Config{
		Image: spec.Artifact.Image,
		Env:   env,
		Labels: map[string]string{
			LabelApp:      spec.App,
			LabelEnv:      spec.Env,
			LabelSlot:     spec.Slot,
			LabelRelease:  spec.ReleaseID,
			LabelService:  spec.Service,
			LabelInstance: strconv.Itoa(spec.Index),
		},
	}
	if argv := commandArgs(spec.Command); argv != nil {
		// The manifest's run is the whole command, as with the process
		// driver: it replaces the image's entrypoint too.
		cfg.Entrypoint = argv[:1]
		cfg.Cmd = argv[1:]
	}
	if sig, err := parseSignal(spec.Stop.Signal); err == nil {
		cfg.StopSignal = sig
	}
	if spec.Stop.Timeout > 0 {
		secs := int((spec.Stop.Timeout + time.Second - 1) / time.Second)
		cfg.StopTimeout = &secs
	}
	host := &container.HostConfig{
		LogConfig:     logConfig,
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
	}
	// A persistent directory of the environment is the same host directory
	// for every container of both slots, at the path its variable names.
	for _, dir := range spec.Persist {
		host.Binds = append(host.Binds, dir+":"+dir)
	}
	sort.Strings(host.Binds)
	if spec.Port > 0 {
		// The port is no secret, and Find needs it to give back an address.
		cfg.Labels[LabelPort] = strconv.Itoa(spec.Port)
	}
	switch d.network() {
	case NetworkPublish:
		if spec.Port > 0 {
			p := nat.Port(strconv.Itoa(spec.Port) + "/tcp")
			cfg.ExposedPorts = nat.PortSet{p: {}}
			host.PortBindings = nat.PortMap{p: {{HostIP: d.listenHost(), HostPort: strconv.Itoa(spec.Port)}}}
		}
	default:
		host.NetworkMode = "host"
	}
	return cfg, host
}

// commandArgs splits a run command into arguments. A command with shell
// syntax runs under /bin/sh -c, which the image must then have; a plain one
// runs directly, so images built FROM scratch work. Empty means the image's
// own entrypoint and command.
func commandArgs(c string) []string {
	c = strings.TrimSpace(c)
	if c == "" {
		return nil
	}
	if strings.ContainsAny(c, ";&|<>\n(){}`$'\"\\*?~") {
		return []string{"/bin/sh", "-c", c}
	}
	return strings.Fields(c)
}

var imageRef = lazyre.New(`^[a-z0-9][a-z0-9._:/-]*@sha256:[a-f0-9]{64}$`)

// validateSpec refuses what cannot run here, before the engine is asked.
func validateSpec(spec gantry.InstanceSpec) error {
	if spec.Artifact.Kind != gantry.ArtifactImage {
		return gantry.Errorf(gantry.EINVALID, "service %s: the docker driver runs image artifacts, not %q", spec.Service, spec.Artifact.Kind)
	}
	if !imageRef.MatchString(spec.Artifact.Image) {
		return gantry.Errorf(gantry.EINVALID, "service %s: image %q is not a repository@sha256:<digest> reference (images run by digest, never by tag)", spec.Service, spec.Artifact.Image)
	}
	if spec.Artifact.Digest != "" && !strings.HasSuffix(spec.Artifact.Image, "@"+spec.Artifact.Digest) {
		return gantry.Errorf(gantry.EINVALID, "service %s: image %q does not have the artifact's digest %s", spec.Service, spec.Artifact.Image, spec.Artifact.Digest)
	}
	for _, f := range []struct{ what, v string }{
		{"app", spec.App}, {"env", spec.Env}, {"slot", spec.Slot}, {"service", spec.Service},
	} {
		if err := gantry.ValidName(f.what, f.v); err != nil {
			return gantry.Errorf(gantry.EINVALID, "instance %s: %s", f.what, gantry.ErrorMessage(err))
		}
	}
	if spec.Index < 0 {
		return gantry.Errorf(gantry.EINVALID, "service %s: instance index %d is negative", spec.Service, spec.Index)
	}
	if spec.Port < 0 || spec.Port > 65535 {
		return gantry.Errorf(gantry.EINVALID, "service %s: port %d is out of range", spec.Service, spec.Port)
	}
	if spec.Stop.Signal != "" {
		if _, err := parseSignal(spec.Stop.Signal); err != nil {
			return err
		}
	}
	return nil
}

// environ builds an instance's environment: nothing of the server's own
// goes in. On the host's network the instance listens on loopback as a
// process does; with a published port, on every interface of its own
// network namespace (Docker publishes the port on the host's loopback).
func (d *Driver) environ(spec gantry.InstanceSpec) ([]string, error) {
	if d.network() == NetworkPublish {
		return spec.EnvironOn(nil, gantry.ListenAll)
	}
	return spec.EnvironOn(nil, d.listenHost())
}

// shortID is a container ID as `docker ps` shows it, for logs.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// notFound reports whether err says the engine has no such object.
func notFound(err error) bool {
	return err != nil && cerrdefs.IsNotFound(err)
}

var _ gantry.PortReserver = (*Driver)(nil)

// ReservePort hands out the host port an instance will be started on, from
// the allocator Start uses for an instance started without one.
func (d *Driver) ReservePort() (int, error) { return d.ports().Take() }
