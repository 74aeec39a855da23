package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// TestServerCrashWithSeparateProxy: with the router running as its own
// `gantry proxy`, a kill -9 of the server in the middle of a promotion to
// prod interrupts no request: prod keeps serving while the server is down,
// and the restarted server brings prod to a consistent state.
func TestServerCrashWithSeparateProxy(t *testing.T) {
	needTools(t)
	bin := gantryBinary(t)
	dir, routerAddr := t.TempDir(), freeAddr(t)
	p := startBinProxy(t, bin, dir, "--listen", routerAddr)
	waitUntil(t, 30*time.Second, func() bool { _, err := os.Stat(p.admin); return err == nil })
	proxyEnv := []string{"GANTRY_TEST_PROXY_ADMIN=" + p.admin, "GANTRY_TEST_PROXY_URL=http://" + routerAddr}
	data := filepath.Join(dir, "state")
	repo := helloRepo(t)

	srv := startChild(t, data, "", "", proxyEnv...)
	mustCLI(t, srv.API, "app", "add", "hello", "--repo", repo)
	mustCLI(t, srv.API, "deploy", "test", "--ref", "v1.0.0")
	mustCLI(t, srv.API, "promote", "test", "prod")
	mustCLI(t, srv.API, "deploy", "test", "--ref", "v1.1.0")
	srv.stop()
	t.Cleanup(func() {
		stopInstancesWith(t, &Server{DataDir: data, Listen: "127.0.0.1:0", ProxyAdmin: p.admin, ProxyURL: "http://" + routerAddr, Logger: newLogger(testWriter{t}, "text")})
	})

	routerURL := "http://" + routerAddr
	load := loadtest.Start(loadtest.Options{URL: routerURL + "/", Host: "hello.localhost", Workers: 4, MaxDuration: 5 * time.Minute})
	for _, at := range []string{"promote:switch:started", "promote:switch:done"} {
		crashing := startChild(t, data, "", at, proxyEnv...)
		if _, _, code := runCLI(t, crashing.API, "promote", "test", "prod"); code == 0 {
			t.Fatalf("promotion survived a crash at %s", at)
		}
		crashing.cmd.Wait()
		// The server is down; prod keeps answering through the proxy.
		before := load.OK.Load()
		waitUntil(t, 30*time.Second, func() bool { return load.OK.Load() > before+50 })

		restarted := startChild(t, data, "", "", proxyEnv...)
		got, err := getVersion(routerURL, "hello.localhost")
		if err != nil || (got != "1.0.0" && got != "1.1.0") {
			t.Fatalf("after a crash at %s prod serves %q, %v", at, got, err)
		}
		env, err := api.NewClient(restarted.API, "tester").Environment(context.Background(), "hello", "prod")
		if err != nil {
			t.Fatal(err)
		}
		if a := env.ActiveSlot(); a == nil || a.Version != got || len(a.Instances) != 2 {
			t.Fatalf("after a crash at %s: active slot %+v, serving %s", at, a, got)
		}
		// Put prod back on 1.0.0 for the next round.
		if got == "1.1.0" {
			mustCLI(t, restarted.API, "rollback", "prod", "--to", "1.0.0")
		}
		restarted.stop()
	}
	load.Stop()
	if n := load.Failed.Load(); n != 0 {
		t.Fatalf("%d of %d requests to prod failed while the server crashed and restarted:\n%s", n, n+load.OK.Load(), strings.Join(load.Failures(), "\n"))
	}
}
