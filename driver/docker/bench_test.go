package docker_test

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// Start of a prebuilt image until it answers /up, through the driver and
// through `docker run` as the baseline. Stopping is not timed.
//
//	go test -run '^$' -bench . -benchtime 20x ./driver/docker/

var benchClient = &http.Client{Timeout: time.Second}

// waitHealthy polls /up closely, so the measure is not the poll interval.
func waitHealthy(b *testing.B, addr string) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := benchClient.Get("http://" + addr + "/up"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	b.Fatalf("%s did not become healthy", addr)
}

func BenchmarkStartToHealthy(b *testing.B) {
	d := MustDriver(b)
	ctx := context.Background()
	port := drivertest.FreePort(b)
	for i := 0; b.Loop(); i++ {
		s := spec("bench", "blue", "web", 0, port)
		s.ReleaseID = "b" + strconv.Itoa(i)
		inst, err := d.Start(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		waitHealthy(b, inst.Addr)
		b.StopTimer()
		if err := d.Stop(ctx, inst, gantry.StopSpec{Signal: "SIGKILL", Timeout: time.Second}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkStartPulledToHealthy starts an image reference the engine lacks,
// so the pull from the loopback registry is part of the time; its layers
// are on the engine already, as the base layers of a service's next release
// usually are.
func BenchmarkStartPulledToHealthy(b *testing.B) {
	env := dockertest.Get(b)
	d := MustDriver(b)
	ctx := context.Background()
	port := drivertest.FreePort(b)
	// A copy of its own, so that removing it does not disturb other tests.
	ref, err := d.CopyImage(ctx, testImage.Image, env.Registries[0].Addr+"/bench/pulled")
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if _, err := d.Client.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil && i > 0 {
			b.Fatal(err)
		}
		b.StartTimer()
		s := spec("bench", "blue", "pulled", 0, port)
		s.ReleaseID = "p" + strconv.Itoa(i)
		s.Artifact.Image = ref
		inst, err := d.Start(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		waitHealthy(b, inst.Addr)
		b.StopTimer()
		if err := d.Stop(ctx, inst, gantry.StopSpec{Signal: "SIGKILL", Timeout: time.Second}); err != nil {
			b.Fatal(err)
		}
		// The stopped container holds the image; the next Start replaces it.
		if _, err := d.Client.ContainerInspect(ctx, inst.Handle); err == nil {
			d.Client.ContainerRemove(ctx, inst.Handle, container.RemoveOptions{})
		}
		b.StartTimer()
	}
}

func BenchmarkDockerRunBaseline(b *testing.B) {
	env := dockertest.Get(b)
	cli, err := exec.LookPath("docker")
	if err != nil {
		b.Skip("no docker CLI for the baseline")
	}
	port := drivertest.FreePort(b)
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("gantry-bench-baseline-%d", i)
		out, err := exec.Command(cli, "-H", env.Engine.Host, "run", "-d", "--name", name, "--network", "host",
			"-e", "PORT="+strconv.Itoa(port), testImage.Image).CombinedOutput()
		if err != nil {
			b.Fatalf("docker run: %v\n%s", err, out)
		}
		waitHealthy(b, "127.0.0.1:"+strconv.Itoa(port))
		b.StopTimer()
		if out, err := exec.Command(cli, "-H", env.Engine.Host, "rm", "-f", name).CombinedOutput(); err != nil {
			b.Fatalf("docker rm: %v\n%s", err, out)
		}
		b.StartTimer()
	}
}
