package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/build"
	"github.com/gantry-dev/gantry/dbchange"
	"github.com/gantry-dev/gantry/delivery"
	"github.com/gantry-dev/gantry/deploy"
	"github.com/gantry-dev/gantry/driver/process"
	"github.com/gantry-dev/gantry/fleet"
	"github.com/gantry-dev/gantry/hook"
	"github.com/gantry-dev/gantry/internal/atomicfile"
	"github.com/gantry-dev/gantry/internal/httplimit"
	"github.com/gantry-dev/gantry/manifest"
	"github.com/gantry-dev/gantry/proxy"
	"github.com/gantry-dev/gantry/proxy/admin"
	"github.com/gantry-dev/gantry/sqlite"
	"github.com/gantry-dev/gantry/trigger"
	"github.com/gantry-dev/gantry/web"
	"github.com/spf13/cobra"
)

func init() { register(newServerCmd) }

// defaultDataDir is where `gantry server` keeps its state unless --data
// says otherwise; the CLI looks there for the server's socket and, in
// direct mode, for the snapshots.
const defaultDataDir = ".gantry"

// Server is a running control plane: API, orchestrator, store, process
// driver, and either the in-process router or a client of `gantry proxy`.
type Server struct {
	DataDir    string
	Listen     string // API address
	RouterAddr string // in-process router address (ignored with ProxyAdmin)
	ProxyAdmin string // admin socket of a separate `gantry proxy`
	ProxyURL   string // where that proxy serves traffic, for verify checks
	SecretsDir string
	DockerHost string // Docker Engine for the docker driver ("": $DOCKER_HOST or the default socket)
	// ArtifactsAt is where artifacts live: "" for <DataDir>/artifacts, a
	// directory (a network filesystem every server mounts), or "store" for
	// the PostgreSQL store (--artifacts).
	ArtifactsAt string
	// DockerAdvertise is the engine host's address where its instances
	// listen and are reached ("": the address of a tcp:// engine, else 127.0.0.1).
	DockerAdvertise string
	Kubeconfig      string // cluster of the kubernetes driver ("": $KUBECONFIG, else no kubernetes driver)
	StoreURL        string // where the state lives: "" for SQLite in DataDir, or a postgres:// URL (--store)
	// KubeProgressDeadline bounds how long a slot's rollout may make no progress.
	KubeProgressDeadline time.Duration
	// SecretsKey is the AES key file that seals stored secrets; it must lie
	// outside DataDir, so that a copy of the state alone reveals nothing.
	// Default ~/.config/gantry/secrets.key, created on first use.
	SecretsKey string
	// Limits bound slow and idle clients of the API, the dashboard and the
	// in-process router; zero fields take httplimit's defaults.
	Limits httplimit.Limits
	Logger *slog.Logger
	Getenv func(string) string

	// AuditKey is the key file of the audit chain (default audit.key
	// beside SecretsKey, created 0600 on first start) and AuditHead the
	// file where the chain's head is recorded after each append (default
	// audit-heads/<id of the state>.json beside the key: DataDir, or the
	// PostgreSQL database and schema of StoreURL). Both must lie
	// outside DataDir: they are what a rewrite of the state cannot reach.
	AuditKey  string
	AuditHead string
	// ReapInterval is how often previews past their TTL are deleted
	// (default 1m); PollTick how often the poller looks whether an app's
	// repository is due (default 1s).
	ReapInterval time.Duration
	PollTick     time.Duration
	// ReplayWindow is how long webhook delivery ids are remembered, and
	// how old an event may be (default 24h).
	ReplayWindow time.Duration

	// FollowRouters keeps the routes in the store, where routers run as
	// `gantry proxy run --follow URL` follow them, instead of in an
	// in-process router (--follow-routers); ProxyURL is then where one of
	// them serves, for verify checks.
	FollowRouters bool
	// Advertise is the URL other servers forward deployments to when
	// this one leads (default APIURL); LeaseTTL how long its lease runs
	// unrenewed (deploy.DefaultLeaseTTL when zero). Both matter only on
	// PostgreSQL, where several servers may share the store.
	Advertise string
	LeaseTTL  time.Duration

	// Set by Open.
	APIURL       string
	RouterURL    string
	State        stateStore // the store in use, SQLite or PostgreSQL
	Store        *sqlite.DB // State when it is SQLite (else nil), for what only SQLite has: its file
	Router       gantry.Router
	Orchestrator *deploy.Orchestrator
	// SocketPath is the unix socket on which the server's own user is
	// admin without a token; Client talks through it.
	SocketPath string
	Client     *api.Client
	Secrets    *secretBox
	Audit      *auditAnchor
	Triggers   *trigger.Service
	// Leader is this server's hold on the lease (nil on SQLite, where the
	// one server always leads).
	Leader *deploy.Leader

	inproc    *proxy.Router
	apiSrv    *http.Server
	sockSrv   *http.Server
	dashboard *web.Dashboard
	routerSrv *proxy.Server
	cancel    context.CancelFunc
	done      chan struct{}
}

// Open starts everything and recovers interrupted deployments. Addresses
// with port 0 get a free port; the chosen ones are in APIURL and RouterURL.
func (s *Server) Open(ctx context.Context) (err error) {
	if s.Logger == nil {
		s.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if s.Getenv == nil {
		s.Getenv = os.Getenv
	}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := os.MkdirAll(s.DataDir, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	if s.State, err = openState(ctx, s.StoreURL, s.DataDir); err != nil {
		return fmt.Errorf("open state: %w", err)
	}
	s.Store, _ = s.State.(*sqlite.DB)
	arts, err := s.openArtifacts()
	if err != nil {
		return err
	}
	drv, err := process.New(filepath.Join(s.DataDir, "run"), arts, s.Logger.With("driver", "process"))
	if err != nil {
		return err
	}
	if err := s.openRouter(ctx); err != nil {
		return err
	}
	s.Orchestrator = &deploy.Orchestrator{
		Store: s.State, Router: s.Router, Artifacts: arts,
		Drivers:      map[string]gantry.Driver{drv.Name(): drv},
		Decode:       manifest.Decode,
		RouterURL:    s.RouterURL,
		SecretFor:    s.secretFor,
		Logger:       s.Logger.With("component", "deploy"),
		Hooks:        hookRunner{r: &hook.Runner{Logger: s.Logger.With("component", "hook")}},
		Databases:    &dbchange.Changer{Logger: s.Logger.With("component", "dbchange")},
		SnapshotRoot: gantry.SnapshotRoot(s.DataDir),
		PersistRoot:  gantry.PersistRoot(s.DataDir),
	}
	builder := &build.Builder{Artifacts: arts, WorkDir: filepath.Join(s.DataDir, "build"), Decode: manifest.Decode, Logger: s.Logger.With("component", "build")}
	releases := &deploy.Releases{
		Store:      s.State,
		Manifest:   builder.Manifest,
		Hooks:      s.Orchestrator.Hooks,
		Resolve:    builder.Resolve,
		Artifacts:  arts,
		Source:     builder.Source,
		CommitTime: builder.CommitTime,
		Build: func(ctx context.Context, app *gantry.App, req gantry.BuildRequest, before deploy.BuildHook, out io.Writer) (*gantry.Release, error) {
			return builder.Build(ctx, build.Request{App: app.Name, Repo: app.Repo, Ref: req.Ref, Version: req.Version, Builder: req.Actor, Progress: out,
				BeforeBuild: build.BeforeBuildFunc(before)})
		},
	}
	dk, err := openDocker(s.DockerHost, s.DockerAdvertise, s.Getenv, s.Logger.With("driver", "docker"))
	if err != nil {
		return err
	}
	if dk != nil {
		s.Orchestrator.Drivers["docker"] = dockerDriver{dk}
		builder.Images = dockerImages(dk)
		releases.Manifest = builder.Manifest
		releases.CheckImage = dk.ImportImage
	}
	kubeconfig := s.Kubeconfig
	if kubeconfig == "" {
		kubeconfig = s.Getenv("KUBECONFIG")
	}
	if k, err := openKubernetes(kubeconfig, s.KubeProgressDeadline, s.Logger.With("driver", "kubernetes")); err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	} else if k != nil {
		s.Orchestrator.Drivers["kubernetes"] = k
	}
	if s.Store == nil {
		return s.openLeader(ctx, releases, builder)
	}
	// Recovery may need the environments' secrets (DATABASE_URL: a
	// snapshot to restore, a clone's database to drop).
	if _, err := s.openSecrets(); err != nil {
		return err
	}
	// Routers that follow this server apply the recovery's route changes
	// through its API, and the recovery waits for them: serve it first.
	if s.FollowRouters {
		if err := s.serveAPI(releases, builder); err != nil {
			return err
		}
	}
	if err := s.Orchestrator.Recover(ctx); err != nil {
		s.Logger.Error("recovery incomplete", "error", err)
	}
	if !s.FollowRouters {
		if err := s.serveAPI(releases, builder); err != nil {
			return err
		}
	}

	wctx, cancel := context.WithCancel(context.Background())
	s.cancel, s.done = cancel, make(chan struct{})
	go func() {
		defer close(s.done)
		s.background(wctx)
	}()
	return nil
}

// background runs, until ctx ends, the work of the server that runs
// deployments: the post-switch watch, the triggers' poller, the reaper
// of previews past their TTL, and the router following the pods a cluster
// replaces (runtime.traffic: router). On SQLite that is the one server; on a
// shared store, the lease holder while it holds the lease.
func (s *Server) background(ctx context.Context) {
	var bg sync.WaitGroup
	bg.Add(4)
	go func() {
		defer bg.Done()
		s.Orchestrator.Watch(ctx, time.Second)
	}()
	go func() {
		defer bg.Done()
		s.Orchestrator.FollowSlots(ctx, time.Second)
	}()
	go func() {
		defer bg.Done()
		s.Triggers.Poll(ctx, orDefault(s.PollTick, time.Second))
	}()
	go func() {
		defer bg.Done()
		s.reapPreviews(ctx, orDefault(s.ReapInterval, time.Minute))
	}()
	bg.Wait()
}

// openAudit seals the audit chain with its key, beside the secrets key
// unless --audit-key says otherwise.
func (s *Server) openAudit(secretsKey string) (*auditAnchor, error) {
	keyPath, headPath := s.AuditKey, s.AuditHead
	if keyPath == "" {
		keyPath = filepath.Join(filepath.Dir(secretsKey), "audit.key")
	}
	if headPath == "" {
		var err error
		if headPath, err = defaultAuditHead(keyPath, s.StoreURL, s.DataDir); err != nil {
			return nil, err
		}
	}
	return openAuditAnchor(context.Background(), s.State, keyPath, headPath, s.DataDir, s.Logger.With("component", "audit"))
}

// openSecrets opens the environments' sealed secrets once, with the key
// of --secrets-key (default ~/.config/gantry/secrets.key), and returns the
// key's path.
func (s *Server) openSecrets() (string, error) {
	keyPath := s.SecretsKey
	if keyPath == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("secrets key: %w (set --secrets-key)", err)
		}
		keyPath = filepath.Join(home, ".config", "gantry", "secrets.key")
	}
	if s.Secrets != nil {
		return keyPath, nil
	}
	box, err := newSecretBox(s.State, keyPath, s.DataDir)
	if err != nil {
		return "", err
	}
	s.Secrets = box
	return keyPath, nil
}

// socketName is the unix socket's name in the data directory.
const socketName = "gantry.sock"

// serveAPI serves the API under /v1 and the dashboard under /, on the TCP
// address (tokens and sessions) and on the unix socket (the server's own
// user is admin there).
func (s *Server) serveAPI(releases *deploy.Releases, builder *build.Builder) error {
	keyPath, err := s.openSecrets()
	if err != nil {
		return err
	}
	box := s.Secrets
	if s.Audit, err = s.openAudit(keyPath); err != nil {
		return err
	}
	apiSrv := &api.Server{
		Store: s.State, Deploys: s.Orchestrator, Releases: releases, Importer: releases, Repos: builder, Router: s.Router,
		Rollouts: s.Orchestrator, Workflows: s.Orchestrator, Databases: s.Orchestrator, Images: s.Orchestrator,
		Tokens: s.State, Audit: s.State, AuditCheck: s.Audit, Secrets: box, Cancels: s.Orchestrator, Canaries: s.Orchestrator,
		Delivery: &delivery.Service{Store: s.State}, Logger: s.Logger.With("component", "api"),
	}
	s.Triggers = &trigger.Service{
		Store: s.State, Tokens: s.State, Deliveries: s.State, Vault: box,
		Releases: releases, Deploys: s.Orchestrator, Workflows: s.Orchestrator,
		Manifest: builder.Manifest, SecretFor: s.secretFor, PublicURL: s.previewURL, ReplayWindow: s.ReplayWindow,
		Logger: s.Logger.With("component", "trigger"),
	}
	apiSrv.Triggers = s.Triggers
	if s.Leader != nil {
		apiSrv.Leader = s.Leader
	}
	apiHandler := apiSrv.Handler()
	s.dashboard = &web.Dashboard{API: apiHandler, Tokens: s.State, Logger: s.Logger.With("component", "web")}
	mux := http.NewServeMux()
	mux.Handle("/v1/", apiHandler)
	mux.Handle("GET /metrics", apiHandler) // delivery metrics for Prometheus, behind a token
	mux.Handle("/", s.dashboard.Handler())

	ln, err := net.Listen("tcp", s.Listen)
	if err != nil {
		return fmt.Errorf("api listener: %w", err)
	}
	s.APIURL = "http://" + ln.Addr().String()
	apiSrv.URL = cmp.Or(s.Advertise, s.APIURL)
	// The API streams the progress of long deploys: the limits bound
	// request bodies and idle connections, never responses.
	s.apiSrv = s.Limits.Server(mux)
	go s.apiSrv.Serve(ln)

	s.SocketPath = filepath.Join(s.DataDir, socketName)
	if abs, err := filepath.Abs(s.SocketPath); err == nil {
		s.SocketPath = abs
	}
	sln, err := api.ListenUnix(s.SocketPath)
	if err != nil {
		return fmt.Errorf("api socket: %w", err)
	}
	s.sockSrv = s.Limits.Server(mux)
	s.sockSrv.ConnContext = api.LocalConnContext
	go s.sockSrv.Serve(sln)
	s.Client = api.NewClient("unix://"+s.SocketPath, "")
	return nil
}

// openRouter starts the in-process router (its state kept in the data
// directory) or connects to a separate `gantry proxy`.
func (s *Server) openRouter(ctx context.Context) error {
	if s.FollowRouters {
		s.Router = &fleet.Router{Store: s.State}
		s.RouterURL = s.ProxyURL
		return nil
	}
	if s.ProxyAdmin != "" {
		s.Router = admin.NewClient(s.ProxyAdmin, "")
		s.RouterURL = s.ProxyURL
		if _, err := s.Router.Status(ctx); err != nil {
			return fmt.Errorf("gantry proxy at %s: %w", s.ProxyAdmin, err)
		}
		return nil
	}
	statePath := filepath.Join(s.DataDir, "router.json")
	var r *proxy.Router
	r = proxy.New(proxy.Config{
		Logger:     s.Logger.With("component", "router"),
		HealthPath: "/.gantry/up",
		OnChange: func() {
			b, err := json.Marshal(r.Snapshot())
			if err == nil {
				err = atomicfile.Write(statePath, b, 0o600)
			}
			if err != nil {
				s.Logger.Error("save router state", "error", err)
			}
		},
	})
	if b, err := os.ReadFile(statePath); err == nil {
		var st proxy.State
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("router state %s: %w", statePath, err)
		}
		if err := r.Restore(ctx, st); err != nil {
			return fmt.Errorf("restore router state: %w", err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ln, err := net.Listen("tcp", s.RouterAddr)
	if err != nil {
		return fmt.Errorf("router listener: %w", err)
	}
	s.inproc, s.Router = r, r
	s.RouterURL = "http://" + ln.Addr().String()
	s.routerSrv = proxy.NewLoopServer(r, s.Limits)
	go s.routerSrv.Serve(ln)
	return nil
}

// secretFor resolves a secret of an environment: the value stored (sealed)
// for it, else $GANTRY_SECRET_<NAME>, else the file <secrets dir>/<NAME>.
func (s *Server) secretFor(app, env, name string) (string, bool) {
	if s.Secrets != nil {
		if v, ok := s.Secrets.resolve(context.Background(), app, env, name); ok {
			return v, true
		}
	}
	return s.secretFallback(name)
}

func (s *Server) secretFallback(name string) (string, bool) {
	if v := s.Getenv("GANTRY_SECRET_" + name); v != "" {
		return v, true
	}
	dir := s.SecretsDir
	if dir == "" {
		dir = filepath.Join(s.DataDir, "secrets")
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", false
	}
	return strings.TrimRight(string(b), "\r\n"), true
}

// Close stops serving. Running instances are left running: the next start
// re-attaches to them.
func (s *Server) Close() error {
	// A leader keeps (and renews) its lease until its deployments have
	// ended below: released sooner, another server would recover them
	// while they still run here, and fence their last writes.
	stopBackground := func() {
		if s.cancel != nil {
			s.cancel()
			<-s.done
			s.cancel = nil
		}
	}
	if s.Leader == nil {
		stopBackground()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.dashboard != nil {
		s.dashboard.Close() // ends the live streams, which Shutdown would wait for
	}
	if s.apiSrv != nil {
		_ = s.apiSrv.Shutdown(ctx)
	}
	if s.sockSrv != nil {
		_ = s.sockSrv.Shutdown(ctx)
	}
	if s.Triggers != nil {
		s.Triggers.Close() // before the orchestrator: what a trigger started ends first
	}
	if s.Orchestrator != nil {
		s.Orchestrator.Wait(ctx)
	}
	stopBackground()
	if s.routerSrv != nil {
		_ = s.routerSrv.Shutdown(ctx)
	}
	if s.inproc != nil {
		_ = s.inproc.Close()
	}
	if s.State != nil {
		return s.State.Close()
	}
	return nil
}

func newServerCmd(m *Main) *cobra.Command {
	s := &Server{}
	var logFormat string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: API and dashboard, orchestrator, router",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkLimits(s.Limits); err != nil {
				return err
			}
			s.Getenv = m.Getenv
			s.Logger = newLogger(m.Stderr, logFormat)
			if err := s.Open(cmd.Context()); err != nil {
				return err
			}
			defer s.Close()
			s.Logger.Info("gantry server ready", "api", s.APIURL, "socket", s.SocketPath, "router", s.RouterURL, "data", s.DataDir, "store", describeStore(s.StoreURL, s.DataDir), "version", gantry.Version)
			<-cmd.Context().Done()
			s.Logger.Info("shutting down; instances keep running and are re-attached at the next start")
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&s.DataDir, "data", defaultDataDir, "state directory: database, artifacts, logs, database snapshots")
	f.StringVar(&s.Listen, "listen", "127.0.0.1:7878", "API and dashboard address")
	f.StringVar(&s.RouterAddr, "router", "127.0.0.1:8080", "address of the in-process router")
	f.StringVar(&s.ProxyAdmin, "proxy-admin", "", "admin socket of a separate gantry proxy to drive instead of the in-process router")
	f.StringVar(&s.ProxyURL, "proxy-url", "http://127.0.0.1:8080", "with --proxy-admin: where that proxy serves traffic")
	f.DurationVar(&s.KubeProgressDeadline, "kubernetes-progress-deadline", 2*time.Minute, "how long a Kubernetes rollout may make no progress before the deploy fails")
	f.StringVar(&s.Kubeconfig, "kubeconfig", "", "cluster of the kubernetes driver (default $KUBECONFIG; without one the driver is not offered)")
	f.StringVar(&s.DockerHost, "docker-host", "", "Docker Engine of the docker driver (default $DOCKER_HOST, else the local socket)")
	f.StringVar(&s.ArtifactsAt, "artifacts", "", "where build artifacts live: a directory (default <data>/artifacts), or \"store\" for the PostgreSQL --store, shared by every server on it")
	f.StringVar(&s.DockerAdvertise, "docker-advertise", "", "address of the Docker Engine's host where its instances listen and routers reach them (default: the address of a tcp:// engine, else 127.0.0.1)")
	f.StringVar(&s.SecretsDir, "secrets-dir", "", "directory of secret files (default <data>/secrets)")
	f.StringVar(&s.SecretsKey, "secrets-key", "", "key file that encrypts stored secrets, outside --data (default ~/.config/gantry/secrets.key, created 0600 on first use)")
	f.StringVar(&s.AuditKey, "audit-key", "", "key file of the audit chain, outside --data (default audit.key beside the secrets key, created 0600 on first start)")
	f.StringVar(&s.AuditHead, "audit-head", "", "file recording the audit chain's head after each append, outside --data (default audit-heads/<id of the state: --data, or --store's database and schema>.json beside the audit key)")
	f.StringVar(&s.StoreURL, "store", "", "where the state lives: a postgres://user@host:port/db?sslmode=disable URL (optional &schema=NAME, default gantry); default SQLite in --data")
	f.DurationVar(&s.ReplayWindow, "webhook-replay-window", trigger.DefaultReplayWindow, "how long webhook delivery ids are remembered, and how old a delivery's event may be")
	f.DurationVar(&s.ReapInterval, "preview-reap-interval", time.Minute, "how often preview environments past their TTL are deleted")
	f.BoolVar(&s.FollowRouters, "follow-routers", false, "keep the routes in the store, served by routers that run gantry proxy run --follow URL (no in-process router; --proxy-url: where one serves)")
	f.StringVar(&s.Advertise, "advertise", "", "with --store postgres://…: the API URL the other servers forward deployments to while this one leads (default the --listen address)")
	f.DurationVar(&s.LeaseTTL, "lease-ttl", deploy.DefaultLeaseTTL, "with --store postgres://…: how long the leader's lease runs unrenewed; another server takes over after it")
	f.StringVar(&logFormat, "log-format", "auto", "log format: json, text, or auto (text on a terminal)")
	addLimitFlags(cmd, &s.Limits, "the API, the dashboard and the in-process router")
	return cmd
}

// reapPreviews deletes previews past their TTL, every interval, until ctx
// ends.
func (s *Server) reapPreviews(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Triggers.Reap(ctx)
		}
	}
}

// previewURL is where the router serves host: its scheme and port.
func (s *Server) previewURL(host string) string {
	u, err := url.Parse(s.RouterURL)
	if err != nil || u.Host == "" {
		return "http://" + host
	}
	if p := u.Port(); p != "" && p != "80" && p != "443" {
		host = net.JoinHostPort(host, p)
	}
	return u.Scheme + "://" + host
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}
