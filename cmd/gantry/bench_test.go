package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// benchServer is a server with the sample app's 1.0.0 on test and 1.1.0 built.
func benchServer(b *testing.B) (*Server, string) {
	b.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		b.Skip("go not on PATH")
	}
	dir := b.TempDir()
	s := &Server{DataDir: dir, Listen: "127.0.0.1:0", RouterAddr: "127.0.0.1:0", Logger: newLogger(discard{}, "text")}
	if err := s.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		s.Orchestrator.StopAll(context.Background())
		s.Close()
	})
	repo := filepath.Join(dir, "hello")
	if err := (&demo{}).makeRepo(context.Background(), repo); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	c := s.Client
	if _, err := c.CreateApp(ctx, "hello", repo); err != nil {
		b.Fatal(err)
	}
	for _, ref := range []string{"v1.0.0", "v1.1.0"} {
		if _, err := c.BuildRelease(ctx, gantry.BuildRequest{App: "hello", Ref: ref}, nil); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := c.Deploy(ctx, gantry.DeployRequest{App: "hello", Env: "test", Release: "1.0.0"}, nil); err != nil {
		b.Fatal(err)
	}
	return s, repo
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// appReadyTime is the baseline: how long the sample app's two instances take
// from exec to a 200 on /up, probed as often as the orchestrator does.
func appReadyTime(b *testing.B, s *Server) time.Duration {
	b.Helper()
	env, err := s.Store.FindEnvironment(context.Background(), "hello", "test")
	if err != nil {
		b.Fatal(err)
	}
	// The unpacked release of the active slot holds bin/hello.
	matches, _ := filepath.Glob(filepath.Join(s.DataDir, "run", "releases", "*", "bin", "hello"))
	if len(matches) == 0 {
		b.Fatalf("no unpacked bin/hello under %s (env %+v)", s.DataDir, env.Active)
	}
	start := time.Now()
	var cmds []*exec.Cmd
	var ports []int
	for range 2 {
		port := mustFreePort(b)
		cmd := exec.Command(matches[0])
		cmd.Env = append(os.Environ(), "PORT="+strconv.Itoa(port))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		cmds, ports = append(cmds, cmd), append(ports, port)
	}
	for _, p := range ports {
		for {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/up", p))
			if err == nil {
				resp.Body.Close()
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	took := time.Since(start)
	for _, c := range cmds {
		c.Process.Signal(syscall.SIGTERM)
		c.Wait()
	}
	return took
}

func mustFreePort(b *testing.B) int {
	b.Helper()
	_, port, _ := net.SplitHostPort(freeAddr(b))
	n, _ := strconv.Atoi(port)
	return n
}

// BenchmarkDeploy measures a blue-green deploy of a prebuilt release (the
// candidate's start, health, switch and drain, and the stop of the older
// standby) and, side by side, the app's own time from exec to healthy.
// overhead-ms is the difference: what Gantry adds.
func BenchmarkDeploy(b *testing.B) {
	s, _ := benchServer(b)
	ctx := context.Background()
	versions := []string{"1.1.0", "1.0.0"}
	var deploy, ready time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if _, err := s.Client.Deploy(ctx, gantry.DeployRequest{App: "hello", Env: "test", Release: versions[i%2]}, nil); err != nil {
			b.Fatal(err)
		}
		deploy += time.Since(start)
		b.StopTimer()
		ready += appReadyTime(b, s)
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(float64(deploy.Milliseconds())/n, "deploy-ms/op")
	b.ReportMetric(float64(ready.Milliseconds())/n, "app-ready-ms/op")
	b.ReportMetric(float64((deploy-ready).Milliseconds())/n, "overhead-ms/op")
}

// BenchmarkRollback measures a rollback to the warm slot, from the API call
// to the first request through the router answered by the old release.
func BenchmarkRollback(b *testing.B) {
	s, _ := benchServer(b)
	ctx := context.Background()
	if _, err := s.Client.Deploy(ctx, gantry.DeployRequest{App: "hello", Env: "test", Release: "1.1.0"}, nil); err != nil {
		b.Fatal(err)
	}
	want := map[string]string{"1.1.0": "1.0.0", "1.0.0": "1.1.0"}
	current := "1.1.0"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		target := want[current]
		if _, err := s.Client.Rollback(ctx, gantry.RollbackRequest{App: "hello", Env: "test"}, nil); err != nil {
			b.Fatal(err)
		}
		for {
			v, err := getVersion(s.RouterURL, "test.hello.localhost")
			if err == nil && v == target {
				break
			}
		}
		current = target
	}
}
