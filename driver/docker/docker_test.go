package docker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/docker"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// testImage is the suite's program in an image FROM scratch, built and
// pushed to the first registry once per test binary.
var (
	testImage gantry.Artifact
	appName   string // per test binary, so leftovers are told apart
)

func TestMain(m *testing.M) {
	os.Exit(dockertest.Main(m, 2, setup))
}

func setup(env *dockertest.Env) error {
	appName = fmt.Sprintf("dt%d", os.Getpid())
	dir, err := os.MkdirTemp("", "gantry-docker-test-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if _, err := drivertest.BuildTestApp(dir); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(scratchDockerfile), 0o644); err != nil {
		return err
	}
	d, err := docker.New(env.Engine.Host, nil)
	if err != nil {
		return err
	}
	defer d.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	testImage, err = d.BuildImage(ctx, docker.ImageBuild{
		Dir:        dir,
		Repository: env.Registries[0].Addr + "/drivertest/testapp",
		Tags:       []string{"1.0.0", "git-abcdef1", "latest"},
	})
	return err
}

const scratchDockerfile = `FROM scratch
COPY bin/testapp /testapp
ENTRYPOINT ["/testapp"]
`

// MustDriver returns a new driver value of the test engine.
func MustDriver(tb testing.TB) *docker.Driver {
	tb.Helper()
	env := dockertest.Get(tb)
	d, err := docker.New(env.Engine.Host, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

// spec is an instance of the test image.
func spec(env, slot, service string, index, port int) gantry.InstanceSpec {
	return gantry.InstanceSpec{
		App: appName, Env: env, Slot: slot, Service: service, Index: index,
		ReleaseID: "r1", Artifact: testImage, Port: port,
		Stop: gantry.StopSpec{Signal: "SIGTERM", Timeout: 10 * time.Second},
		Vars: map[string]string{},
	}
}

func TestDriverSuite(t *testing.T) {
	d := MustDriver(t)
	drivertest.Run(t, drivertest.Harness{
		Driver: d,
		Spec: func(t *testing.T, slot, service string, index, port int) gantry.InstanceSpec {
			return spec("suite", slot, service, index, port)
		},
		Restart: func(t *testing.T) gantry.Driver { return MustDriver(t) },
	})
}
