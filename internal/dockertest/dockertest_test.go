package dockertest

import (
	"context"
	"net/http"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(Main(m, 1, nil)) }

func TestEngineAndRegistryAnswer(t *testing.T) {
	env := Get(t)
	cli, err := env.Engine.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := cli.ServerVersion(ctx)
	if err != nil {
		t.Fatalf("engine version: %v", err)
	}
	t.Logf("engine %s, API %s", v.Version, v.APIVersion)
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.DockerRootDir != env.Engine.Dir+"/data" {
		t.Errorf("engine data root %s, want its own %s/data", info.DockerRootDir, env.Engine.Dir)
	}
	resp, err := http.Get("http://" + env.Registries[0].Addr + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("registry /v2/: %s", resp.Status)
	}
}

// TestCloseStopsEverything starts a second set and checks that Close ends
// its processes and removes its files.
func TestCloseStopsEverything(t *testing.T) {
	Get(t) // skips where docker cannot run
	env, err := Start(1)
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{env.Engine.cmd.Process.Pid, env.Registries[0].cmd.Process.Pid}
	if err := env.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d still runs after Close", pid)
		}
	}
	if _, err := os.Stat(env.dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Close: %v", env.dir, err)
	}
}
