package main

import (
	"context"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/examples"
	"github.com/spf13/cobra"
)

func init() { register(newDemoCmd) }

// demo is Gantry's main job on embedded defaults: a server, a sample app
// with two versions, v1 deployed to test and promoted to prod.
type demo struct {
	m       *Main
	dataDir string
	listen  string
	router  string
	keep    bool
	exit    bool
}

func newDemoCmd(m *Main) *cobra.Command {
	d := &demo{m: m}
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a server with a sample app deployed to test and promoted to prod, and print the URLs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return d.run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&d.dataDir, "data", "", "state directory (default: a new temporary directory)")
	f.StringVar(&d.listen, "listen", "127.0.0.1:7878", "API address (a free port is used if it is taken)")
	f.StringVar(&d.router, "router", "127.0.0.1:8080", "router address (a free port is used if it is taken)")
	f.BoolVar(&d.keep, "keep", false, "leave the app's instances running and the data directory in place on exit")
	f.BoolVar(&d.exit, "exit", false, "exit after the deploys instead of serving until interrupted (for scripts and tests)")
	return cmd
}

func (d *demo) say(format string, args ...any) { fmt.Fprintf(d.m.Stdout, format+"\n", args...) }

func (d *demo) run(ctx context.Context) (err error) {
	if _, err := exec.LookPath("git"); err != nil {
		return gantry.Errorf(gantry.EINVALID, "the demo needs git on PATH")
	}
	if _, err := exec.LookPath("go"); err != nil {
		return gantry.Errorf(gantry.EINVALID, "the demo builds its sample app with Go: put go on PATH")
	}
	temp := d.dataDir == ""
	if temp {
		if d.dataDir, err = os.MkdirTemp("", "gantry-demo-"); err != nil {
			return err
		}
	}
	d.dataDir, _ = filepath.Abs(d.dataDir)
	logFile, err := os.OpenFile(filepath.Join(mkdir(d.dataDir), "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	srv := &Server{DataDir: d.dataDir, Listen: freeOr(d.listen), RouterAddr: freeOr(d.router), Logger: newLogger(logFile, "text"), Getenv: d.m.Getenv}
	if err := srv.Open(ctx); err != nil {
		return err
	}
	defer func() {
		if !d.keep {
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			if serr := srv.Orchestrator.StopAll(sctx); serr != nil && err == nil {
				err = serr
			}
			cancel()
		}
		srv.Close()
		if temp && !d.keep {
			os.RemoveAll(d.dataDir)
		}
	}()
	d.say("gantry server: API %s, router %s, state in %s", srv.APIURL, srv.RouterURL, d.dataDir)

	repo := filepath.Join(d.dataDir, "hello")
	if err := d.makeRepo(ctx, repo); err != nil {
		return fmt.Errorf("create the sample repository: %w", err)
	}
	d.say("sample app: git repository %s with two commits (1.0.0, then 1.1.0 on main)", repo)
	c := srv.Client
	if _, err := c.CreateApp(ctx, "hello", repo); err != nil && gantry.ErrorCode(err) != gantry.ECONFLICT {
		return err
	}
	p := d.m.newProgress()
	defer p.done()
	rel, err := c.BuildRelease(ctx, gantry.BuildRequest{App: "hello", Ref: "v1.0.0"}, p.event)
	if err != nil {
		return err
	}
	if _, err := c.Deploy(ctx, gantry.DeployRequest{App: "hello", Env: "test", Release: rel.ID}, p.event); err != nil {
		return err
	}
	if _, err := c.Promote(ctx, gantry.PromoteRequest{App: "hello", From: "test", To: "prod"}, p.event); err != nil {
		return err
	}
	p.done()
	// A token to sign in to the dashboard with (the CLI uses the socket).
	signIn := ""
	if tok, err := c.CreateToken(ctx, api.CreateTokenRequest{Name: "demo", Role: gantry.RoleAdmin}); err == nil {
		signIn = tok.Secret
	} else if gantry.ErrorCode(err) != gantry.ECONFLICT {
		return err
	}
	port := srv.RouterURL[strings.LastIndex(srv.RouterURL, ":")+1:]
	d.say("")
	d.say("hello %s is live:", rel.Version)
	if signIn != "" {
		d.say("  dashboard  %s/   (sign in with the token %s)", srv.APIURL, signIn)
	} else {
		d.say("  dashboard  %s/   (sign in with a token: gantry token create NAME --role admin)", srv.APIURL)
	}
	d.say("  test  http://test.hello.localhost:%s/", port)
	d.say("  prod  http://hello.localhost:%s/", port)
	d.say("  (or: curl -H 'Host: hello.localhost' %s/)", srv.RouterURL)
	d.say("")
	d.say("Try, in another terminal:")
	d.say("  export GANTRY_SERVER=unix://%s     # the server's socket: you, without a token", srv.SocketPath)
	d.say("  go run ./cmd/gantry status --app hello")
	d.say("  go run ./cmd/gantry deploy test --ref main --app hello      # builds 1.1.0 and deploys it to test")
	d.say("  go run ./cmd/gantry promote test prod --app hello           # the same artifact, to prod")
	d.say("  go run ./cmd/gantry rollback prod --app hello               # back to 1.0.0, kept warm")
	d.say("  go run ./cmd/gantry history --app hello")
	if d.exit {
		return nil
	}
	d.say("")
	d.say("Serving until interrupted (Ctrl-C).")
	<-ctx.Done()
	d.say("stopping the demo")
	return nil
}

// makeRepo writes the sample app into a new git repository: version 1.0.0
// tagged v1.0.0, then 1.1.0 on main.
func (d *demo) makeRepo(ctx context.Context, dir string) error {
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		return nil // kept from an earlier run with --data
	}
	src, err := fs.Sub(examples.Hello, "hello")
	if err != nil {
		return err
	}
	if err := os.CopyFS(dir, src); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module hello\n\ngo 1.22\n"), 0o644); err != nil {
		return err
	}
	git := func(args ...string) error {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Gantry Demo", "GIT_AUTHOR_EMAIL=demo@gantry.localhost",
			"GIT_COMMITTER_NAME=Gantry Demo", "GIT_COMMITTER_EMAIL=demo@gantry.localhost")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	steps := [][]string{{"init", "-q", "-b", "main"}, {"add", "-A"}, {"commit", "-q", "-m", "hello 1.0.0"}, {"tag", "v1.0.0"}}
	for _, s := range steps {
		if err := git(s...); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "VERSION"), []byte("1.1.0\n"), 0o644); err != nil {
		return err
	}
	for _, s := range [][]string{{"commit", "-q", "-am", "hello 1.1.0"}, {"tag", "v1.1.0"}} {
		if err := git(s...); err != nil {
			return err
		}
	}
	return nil
}

// freeOr returns addr if it can be bound now, else a free port on the same host.
func freeOr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		ln.Close()
		return addr
	}
	host, _, _ := net.SplitHostPort(addr)
	return net.JoinHostPort(host, "0")
}

func mkdir(dir string) string {
	_ = os.MkdirAll(dir, 0o755)
	return dir
}
