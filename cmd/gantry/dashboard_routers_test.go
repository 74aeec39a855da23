package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/internal/pgtest"
)

// TestRoutersPageInChromium: a control plane on PostgreSQL with a router
// that follows it (`gantry proxy run --follow`) and an app deployed; in a
// real browser, the routers page shows this server leading with its
// fencing token, and the router up to date, serving the app's instances.
func TestRoutersPageInChromium(t *testing.T) {
	needTools(t)
	ctx := browserContext(t)
	pg := pgtest.Start(t)
	dir := t.TempDir()
	routerAddr := freeAddr(t)
	s := &Server{DataDir: filepath.Join(dir, "data"), Listen: "127.0.0.1:0", StoreURL: pgStore(t, pg, "dash", "dash"),
		FollowRouters: true, ProxyURL: "http://" + routerAddr, SecretsKey: filepath.Join(dir, "keys", "secrets.key"),
		Logger: newLogger(testWriter{t}, "text")}
	if err := s.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	registerSocket(t, s.APIURL, "unix://"+s.SocketPath)
	keepServer(t, &s)

	tokenFile := filepath.Join(dir, "router.token")
	if err := os.WriteFile(tokenFile, []byte(mustToken(t, s, "edge", "deployer")), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "router"), 0o755)
	startBinProxy(t, gantryBinary(t), filepath.Join(dir, "router"), "--listen", routerAddr, "--follow", s.APIURL,
		"--follow-token-file", tokenFile, "--follow-name", "edge-1")
	waitUntil(t, 20*time.Second, func() bool {
		st, err := api.NewClient("unix://"+s.SocketPath, "").Routers(context.Background())
		return err == nil && len(st.Routers) == 1
	})
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", helloRepo(t))
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.0.0")
	wantVersion(t, "http://"+routerAddr, "test.hello.localhost", "1.0.0")
	secret := mustToken(t, s, "ops", "viewer")

	sh := newShooter(t, ctx)
	signIn(t, ctx, s.APIURL+"/signin", secret, "header nav")
	var holder, epoch, lease, state, row string
	var ok bool
	run(t, ctx, "open the routers page",
		chromedp.Click(`header nav a[href="/routers"]`, chromedp.ByQuery),
		chromedp.WaitVisible("#router-edge-1", chromedp.ByQuery),
		chromedp.Text("#leader-holder", &holder, chromedp.ByQuery),
		chromedp.Text("#leader-epoch", &epoch, chromedp.ByQuery),
		chromedp.Text("#leader-lease", &lease, chromedp.ByQuery),
		chromedp.AttributeValue("#router-edge-1", "data-state", &state, &ok, chromedp.ByQuery),
		chromedp.Text("#router-edge-1", &row, chromedp.ByQuery),
	)
	sh.shot("routers")
	st, err := api.NewClient("unix://"+s.SocketPath, "").Leader(context.Background())
	if err != nil || st.Lease == nil {
		t.Fatalf("leader: %+v, %v", st, err)
	}
	if !strings.Contains(holder, st.Lease.Holder) || !strings.Contains(holder, "this server") {
		t.Errorf("leader shown as %q, want %s, this server", holder, st.Lease.Holder)
	}
	if !strings.Contains(epoch, "epoch") || !strings.Contains(lease, "expires in") {
		t.Errorf("fencing token %q, lease %q; want an epoch and when the lease expires", epoch, lease)
	}
	env, err := api.NewClient("unix://"+s.SocketPath, "").Environment(context.Background(), "hello", "test")
	if err != nil {
		t.Fatal(err)
	}
	if state != "up-to-date" || !strings.Contains(row, "hello") || !strings.Contains(row, env.ActiveSlot().Instances[0].Addr) || !strings.Contains(row, routerAddr) {
		t.Errorf("router edge-1 shown %s: %q; want up to date, at %s, serving hello's instances (%s)", state, row, routerAddr, env.ActiveSlot().Instances[0].Addr)
	}
}
