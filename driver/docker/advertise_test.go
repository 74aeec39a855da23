package docker_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/docker"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

func TestAdvertiseFor(t *testing.T) {
	for _, tt := range []struct{ host, want string }{
		{"tcp://10.0.0.30:2375", "10.0.0.30"},
		{"tcp://docker-1.internal:2376", "docker-1.internal"},
		{"tcp://[fd00::30]:2375", "fd00::30"},
		{"tcp://127.0.0.1:2375", ""},
		{"tcp://0.0.0.0:2375", ""},
		{"unix:///var/run/docker.sock", ""},
		{"", ""},
	} {
		if got := docker.AdvertiseFor(tt.host); got != tt.want {
			t.Errorf("AdvertiseFor(%q) = %q, want %q", tt.host, got, tt.want)
		}
	}
}

// TestAdvertisedInstance: a driver told that its engine's host is at
// another address (here 127.0.0.2, which the host network of the test
// engine has) gives its instances that address, tells them to listen
// there ($HOST), and picks ports the engine's host does not use: not the
// port of a container it started, whichever driver value started it.
func TestAdvertisedInstance(t *testing.T) {
	d := MustDriver(t)
	d.SetAdvertise("127.0.0.2")
	port, err := d.ReservePort()
	if err != nil {
		t.Fatal(err)
	}
	s := spec("adv", "blue", "web", 0, port)
	s.Command = "/testapp -listen 127.0.0.2:" + strconv.Itoa(port)
	inst := MustStart(t, d, s)
	t.Cleanup(func() { d.Stop(context.Background(), inst, gantry.StopSpec{Signal: "SIGKILL"}) })
	if want := "127.0.0.2:" + strconv.Itoa(port); inst.Addr != want {
		t.Fatalf("instance address %s, want %s", inst.Addr, want)
	}
	drivertest.WaitUp(t, inst)
	if got := drivertest.MustGet(t, inst, "/env?name=HOST"); got != "127.0.0.2" {
		t.Errorf("instance sees HOST=%q, want 127.0.0.2", got)
	}
	if c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second); err == nil {
		c.Close()
		t.Errorf("the instance answers on 127.0.0.1:%d too", port)
	}
	found, err := d.Find(context.Background(), s.App, "adv", "blue")
	if err != nil || len(found) != 1 || found[0].Instance.Addr != inst.Addr {
		t.Fatalf("Find: %+v, %v; want the instance at %s", found, err, inst.Addr)
	}

	// Another server's driver of the same engine never hands out that port.
	other := MustDriver(t)
	other.SetAdvertise("127.0.0.2")
	other.Ports.Low, other.Ports.High = port, port
	if p, err := other.ReservePort(); err == nil {
		t.Errorf("another driver of the engine handed out port %d, which an instance uses", p)
	}
}
