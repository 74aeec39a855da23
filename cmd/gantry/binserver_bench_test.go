package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
)

// binServer is `gantry server` of one binary in its own process, as a
// user runs it, with the sample app deployed by that binary's CLI: 1.0.0
// and 1.1.0 on the two slots of test, 1.1.0 active.
type binServer struct {
	bin       string
	socket    string // unix:///…/gantry.sock
	routerURL string
	client    *api.Client // over the socket: admin without a token
	// serving is the release test serves now; a benchmark flips it.
	serving string
}

// startBinServer starts bin's server on a new data directory and a free
// router port. At cleanup it stops the server (its instances keep running,
// as they do after any server's stop) and then those instances, from the
// state it left.
func startBinServer(b *testing.B, bin string) *binServer {
	b.Helper()
	dir := b.TempDir()
	data, router := filepath.Join(dir, "data"), freeAddr(b)
	srv := &binServer{bin: bin, socket: "unix://" + filepath.Join(data, socketName), routerURL: "http://" + router, serving: "1.1.0"}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "server", "--data", data, "--listen", "127.0.0.1:0", "--router", router, "--log-format", "text")
	cmd.Stdout, cmd.Stderr = &syncWriter{w: &logs}, &syncWriter{w: &logs}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		stopInstancesOf(b, data, newLogger(discard{}, "text"))
	})
	srv.client = api.NewClient(srv.socket, "")
	ctx := context.Background()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(20 * time.Millisecond) {
		if _, err := srv.client.ListApps(ctx); err == nil {
			break
		} else if time.Now().After(deadline) || cmd.ProcessState != nil {
			b.Fatalf("%s server not answering on %s: %v\n%s", bin, srv.socket, err, logs.String())
		}
	}
	repo := filepath.Join(dir, "hello")
	if err := (&demo{}).makeRepo(ctx, repo); err != nil {
		b.Fatal(err)
	}
	srv.cli(b, "app", "add", "hello", "--repo", repo)
	srv.cli(b, "deploy", "test", "--ref", "v1.0.0")
	srv.cli(b, "deploy", "test", "--ref", "v1.1.0")
	return srv
}

// cli runs srv's binary as its CLI against srv and fails b unless it
// exits 0.
func (srv *binServer) cli(b *testing.B, args ...string) {
	b.Helper()
	if out, err := srv.command(args...).CombinedOutput(); err != nil {
		b.Fatalf("%s %v: %v\n%s", srv.bin, args, err, out)
	}
}

// command is bin's CLI against srv, with argv args.
func (srv *binServer) command(args ...string) *exec.Cmd {
	cmd := exec.Command(srv.bin, args...)
	cmd.Env = append(os.Environ(), "GANTRY_SERVER="+srv.socket)
	return cmd
}

// journalTime is the last deployment's own time in srv's journal, created
// to finished.
func (srv *binServer) journalTime(b *testing.B) time.Duration {
	b.Helper()
	ds, err := srv.client.ListDeployments(context.Background(), "hello", "test", 1, 0)
	if err != nil || len(ds) == 0 {
		b.Fatalf("last deployment: %v", err)
	}
	return ds[0].FinishedAt.Sub(ds[0].CreatedAt)
}

// rollbackByAPI is the rollback from the Go client in this process, over
// srv's socket: no process start.
func (srv *binServer) rollbackByAPI() error {
	_, err := srv.client.Rollback(context.Background(), gantry.RollbackRequest{App: "hello", Env: "test"}, nil)
	return err
}
