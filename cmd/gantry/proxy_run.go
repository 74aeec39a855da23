package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/atomicfile"
	"github.com/gantry-dev/gantry/internal/httplimit"
	"github.com/gantry-dev/gantry/internal/listenfd"
	"github.com/gantry-dev/gantry/proxy"
	"github.com/gantry-dev/gantry/proxy/admin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
)

// Names of the sockets handed over on a takeover.
const (
	lnHTTP     = "http"
	lnHTTPS    = "https"
	lnAdmin    = "admin"
	lnAdminTCP = "admin-tcp"
	lnMetrics  = "metrics"
)

type proxyRunFlags struct {
	listen, admin, state, metrics    string
	adminTCP, adminTokenFile         string
	tlsListen                        string
	certs                            []string
	acmeEmail, acmeDir, acmeCache    string
	acmeCA                           string
	pidFile, healthPath              string
	shutdownTimeout, takeoverTimeout time.Duration
	limits                           httplimit.Limits
	follow                           proxyFollowFlags
}

func newProxyRunCmd(m *Main) *cobra.Command {
	var fl proxyRunFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the router as its own process",
		Long: `Run the router. Routes are kept in the state file (written atomically on
every change) and restored at start. On SIGHUP the process starts a fresh
copy of its binary, hands it the listening sockets, and drains once the copy
serves: a restart or an upgrade refuses no connection. SIGTERM or SIGINT
drain and stop. Logs are JSON on stderr.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := fl.check(); err != nil {
				return err
			}
			p := &proxyProcess{flags: fl, log: slog.New(slog.NewJSONHandler(m.Stderr, nil)), stdout: m.Stdout, stderr: m.Stderr}
			return p.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&fl.listen, "listen", "127.0.0.1:8080", "address for plain HTTP traffic")
	f.StringVar(&fl.admin, "admin", defaultProxyAdmin, "unix socket of the admin API")
	f.StringVar(&fl.state, "state", filepath.Join(".gantry", "proxy.json"), "file the routes are kept in")
	f.StringVar(&fl.metrics, "metrics", "", "address to serve Prometheus metrics on (/metrics)")
	f.StringVar(&fl.adminTCP, "admin-tcp", "", "also serve the admin API on this loopback address (needs --admin-token-file)")
	f.StringVar(&fl.adminTokenFile, "admin-token-file", "", "file holding the bearer token of the TCP admin API")
	f.StringVar(&fl.tlsListen, "tls-listen", "", "address for HTTPS traffic")
	f.StringArrayVar(&fl.certs, "cert", nil, "static certificate for a host: host=cert.pem,key.pem (repeatable; host may be *.domain)")
	f.StringVar(&fl.acmeEmail, "acme-email", "", "contact address for automatic (ACME) certificates")
	f.StringVar(&fl.acmeDir, "acme-directory", "", "ACME directory URL for automatic certificates (e.g. Let's Encrypt's)")
	f.StringVar(&fl.acmeCA, "acme-ca-file", "", "CA bundle to trust for the ACME server's own HTTPS (a private ACME server)")
	f.StringVar(&fl.acmeCache, "acme-cache", filepath.Join(".gantry", "acme"), "directory the ACME account and certificates are kept in")
	f.StringVar(&fl.pidFile, "pid-file", defaultProxyPidFile, "write the serving process's id here (rewritten by a takeover; empty: none)")
	f.StringVar(&fl.healthPath, "health-path", "/.gantry/up", "path the proxy itself answers 200 on, for every host")
	f.DurationVar(&fl.shutdownTimeout, "shutdown-timeout", 30*time.Second, "how long a stopping process lets in-flight requests finish")
	f.DurationVar(&fl.takeoverTimeout, "takeover-timeout", time.Minute, "how long a takeover waits for admin calls to finish and for the new process to serve")
	addLimitFlags(cmd, &fl.limits, "the router's HTTP and HTTPS listeners")
	addProxyFollowFlags(cmd, &fl.follow)
	return cmd
}

func (fl *proxyRunFlags) check() error {
	if err := checkLimits(fl.limits); err != nil {
		return err
	}
	if err := fl.follow.check(); err != nil {
		return err
	}
	if fl.adminTCP != "" {
		if fl.adminTokenFile == "" {
			return usagef("--admin-tcp needs --admin-token-file")
		}
		host, _, err := net.SplitHostPort(fl.adminTCP)
		if err != nil {
			return usagef("--admin-tcp %q: %v", fl.adminTCP, err)
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return usagef("--admin-tcp %q: the admin API listens on loopback only", fl.adminTCP)
		}
	}
	tlsWanted := len(fl.certs) > 0 || fl.acmeDir != "" || fl.acmeEmail != ""
	if tlsWanted && fl.tlsListen == "" {
		return usagef("--cert and --acme-* need --tls-listen")
	}
	if fl.tlsListen != "" && !tlsWanted {
		return usagef("--tls-listen needs --cert or --acme-directory")
	}
	if fl.acmeEmail != "" && fl.acmeDir == "" {
		return usagef("--acme-email needs --acme-directory")
	}
	return nil
}

// proxyProcess is one `gantry proxy run` process.
type proxyProcess struct {
	flags          proxyRunFlags
	log            *slog.Logger
	stdout, stderr io.Writer // a takeover child writes here too

	router    *proxy.Router
	redirects httpsRedirects
	certs     *certStore

	saveMu   sync.Mutex
	saveOff  bool // after a takeover the state file is the new process's
	inherit  *listenfd.Inherited
	traffic  []*servedHTTP // plain, TLS and metrics listeners
	admins   []*servedHTTP
	adminTok string
}

func (p *proxyProcess) run(ctx context.Context) error {
	fl := p.flags
	token, err := readTokenFile("--admin-token-file", fl.adminTokenFile)
	if err != nil {
		return err
	}
	p.adminTok = token
	if p.certs, err = loadCertStore(fl.certs); err != nil {
		return err
	}
	for _, dir := range []string{filepath.Dir(fl.state), filepath.Dir(fl.admin), filepath.Dir(fl.pidFile)} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
	}
	// SIGHUP is caught from the start: its default action would kill
	// a process that is still starting.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	p.inherit, err = listenfd.Inherit()
	if err != nil {
		return err
	}
	defer p.inherit.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p.router = proxy.New(proxy.Config{
		Logger:     p.log,
		Metrics:    proxy.NewMetrics(reg),
		OnChange:   p.saveState,
		HealthPath: fl.healthPath,
	})
	defer p.router.Close()
	if err := p.restoreState(ctx); err != nil {
		return err
	}
	if fl.acmeDir != "" {
		if p.certs.acme, err = newACMEManager(p.router, fl.acmeEmail, fl.acmeDir, fl.acmeCache, fl.acmeCA); err != nil {
			return err
		}
	}

	if err := p.listen(reg); err != nil {
		p.stopAll(context.Background(), true)
		return err
	}
	if err := p.writePidFile(); err != nil {
		p.stopAll(context.Background(), true)
		return err
	}
	tookOver := p.inherit.Handover()
	if err := p.inherit.Ready(); err != nil {
		p.log.Error("tell the old process that this one serves", "error", err)
	}
	addrs := []any{"pid", os.Getpid(), "takeover", tookOver}
	for _, s := range append(append([]*servedHTTP(nil), p.traffic...), p.admins...) {
		addrs = append(addrs, s.name, s.ln.Addr().String())
	}
	p.log.Info("proxy serving", addrs...)
	stopFollow, err := p.follow(ctx)
	if err != nil {
		p.stopAll(context.Background(), true)
		return err
	}
	defer stopFollow()

	for {
		select {
		case <-ctx.Done():
			p.log.Info("proxy stopping")
			sctx, cancel := context.WithTimeout(context.Background(), fl.shutdownTimeout)
			defer cancel()
			p.stopAll(sctx, true)
			p.saveState()
			if fl.pidFile != "" {
				os.Remove(fl.pidFile)
			}
			return nil
		case <-hup:
			if err := p.takeover(); err != nil {
				p.log.Error("takeover failed; this process keeps serving", "error", err)
				// Rewriting the pid file (a new inode, same pid)
				// tells a waiting `gantry proxy reload` it failed.
				p.writePidFile()
				continue
			}
			return nil
		}
	}
}

func (p *proxyProcess) writePidFile() error {
	if p.flags.pidFile == "" {
		return nil
	}
	err := atomicfile.Write(p.flags.pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	if err != nil {
		p.log.Error("write pid file", "error", err)
	}
	return err
}

// restoreState installs the routes of the state file. A file that does not
// parse stops the start: serving nothing and then overwriting it would lose
// every route.
func (p *proxyProcess) restoreState(ctx context.Context) error {
	b, err := os.ReadFile(p.flags.state)
	if errors.Is(err, os.ErrNotExist) {
		p.redirects.update(proxy.State{})
		return nil
	} else if err != nil {
		return err
	}
	var st proxy.State
	if err := json.Unmarshal(b, &st); err != nil {
		return gantry.Errorf(gantry.EINVALID, "state file %s does not parse: %v", p.flags.state, err)
	}
	if err := p.router.Restore(ctx, st); err != nil {
		return fmt.Errorf("restore %s: %w", p.flags.state, err)
	}
	p.redirects.update(st)
	p.log.Info("state restored", "file", p.flags.state, "routes", len(st.Routes))
	return nil
}

// saveState is the router's OnChange: it writes the current snapshot. The
// snapshot is taken under saveMu so that the last write is the newest state.
func (p *proxyProcess) saveState() {
	p.saveMu.Lock()
	defer p.saveMu.Unlock()
	st := p.router.Snapshot()
	p.redirects.update(st)
	if p.saveOff {
		return
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = atomicfile.Write(p.flags.state, append(b, '\n'), 0o600)
	}
	if err != nil {
		p.log.Error("save state", "file", p.flags.state, "error", err)
	}
}

func (p *proxyProcess) listen(reg *prometheus.Registry) error {
	fl := p.flags
	plain := http.Handler(p.router)
	if fl.tlsListen != "" {
		ln, err := p.inherit.Listen(lnHTTPS, "tcp", fl.tlsListen)
		if err != nil {
			return fmt.Errorf("listen %s: %w", fl.tlsListen, err)
		}
		srv := proxy.NewServer(p.router, fl.limits)
		srv.TLSConfig = p.certs.tlsConfig()
		p.traffic = append(p.traffic, serveHTTP(p.log, lnHTTPS, ln, srv, true))
		// The port actually bound, for --tls-listen with port 0.
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		plain = withHTTPSRedirect(plain, p.router, &p.redirects, port)
		if p.certs.acme != nil {
			plain = p.certs.acme.HTTPHandler(plain)
		}
	}
	ln, err := p.inherit.Listen(lnHTTP, "tcp", fl.listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", fl.listen, err)
	}
	p.traffic = append(p.traffic, serveHTTP(p.log, lnHTTP, ln, proxy.NewLoopServer(plain, fl.limits), false))

	if fl.metrics != "" {
		ln, err := p.inherit.Listen(lnMetrics, "tcp", fl.metrics)
		if err != nil {
			return fmt.Errorf("listen %s: %w", fl.metrics, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		p.traffic = append(p.traffic, serveHTTP(p.log, lnMetrics, ln, &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, false))
	}

	ln, err = p.inherit.Listen(lnAdmin, "unix", fl.admin)
	if err != nil {
		return fmt.Errorf("admin socket %s: %w", fl.admin, err)
	}
	if err := os.Chmod(fl.admin, 0o600); err != nil {
		ln.Close()
		return err
	}
	p.serveAdmin(lnAdmin, ln)
	if fl.adminTCP != "" {
		ln, err := p.inherit.Listen(lnAdminTCP, "tcp", fl.adminTCP)
		if err != nil {
			return fmt.Errorf("listen %s: %w", fl.adminTCP, err)
		}
		p.serveAdmin(lnAdminTCP, ln)
	}
	return nil
}

func (p *proxyProcess) serveAdmin(name string, ln net.Listener) {
	token := ""
	if name == lnAdminTCP {
		token = p.adminTok
	}
	srv := &http.Server{
		Handler:           admin.Handler(p.router, token, p.log.With("component", "admin")),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
	}
	p.admins = append(p.admins, serveHTTP(p.log, name, ln, srv, false))
}

// stopAll drains every server; final also removes the admin socket file,
// which a takeover leaves to the new process.
func (p *proxyProcess) stopAll(ctx context.Context, final bool) {
	var wg sync.WaitGroup
	for _, s := range append(append([]*servedHTTP(nil), p.admins...), p.traffic...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.stop(ctx); err != nil {
				p.log.Warn("stop listener", "listener", s.name, "error", err)
			}
		}()
	}
	wg.Wait()
	if final && len(p.admins) > 0 {
		os.Remove(p.flags.admin)
	}
	p.admins, p.traffic = nil, nil
}
