package docker

import (
	"context"
	"errors"
	"net"
	"net/url"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/gantry-dev/gantry/internal/portalloc"
)

// An engine on another host (several servers, routers on other hosts:
// docs/topology.md) runs instances that the servers health-check and the
// routers reach over the network, not on the loopback of the server that
// started them. Advertise names that host's address: a container on the
// host network listens on it ($HOST), a published port is published on
// it, and an instance's address is it. Every server of the control plane
// that is given the same engine and address manages the same instances.

// AdvertiseFor is the address to advertise for an engine at host: the
// address of a tcp:// engine ("tcp://10.0.0.30:2375" gives "10.0.0.30"),
// empty for a local one (a unix socket, or none), whose instances stay on
// 127.0.0.1. An engine reached by name gives the name; a wildcard address
// gives nothing, since nobody can connect to it.
func AdvertiseFor(host string) string {
	u, err := url.Parse(host)
	if err != nil || u.Scheme != "tcp" {
		return ""
	}
	h := u.Hostname()
	if ip := net.ParseIP(h); ip != nil && (ip.IsUnspecified() || ip.IsLoopback()) {
		return ""
	}
	return h
}

// SetAdvertise makes the driver's instances listen on and be reached at
// addr, the engine's host as the routers and the other servers reach it.
// Ports are then chosen among those the engine's host does not use: the
// driver's own containers (by label, whichever server started them) and
// whatever answers on addr.
func (d *Driver) SetAdvertise(addr string) {
	d.Advertise = addr
	if addr != "" {
		d.Ports = &portalloc.Allocator{Free: d.remotePortFree}
	}
}

// listenHost is the address instances listen on and are reached at.
func (d *Driver) listenHost() string {
	if d.Advertise != "" {
		return d.Advertise
	}
	return "127.0.0.1"
}

// remotePortFree says whether port is free on the engine's host: no
// container of the driver was started on it, and nothing answers there.
// Asked on one server's allocator, it also sees what another server
// started before it took over.
func (d *Driver) remotePortFree(port int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", LabelPort+"="+strconv.Itoa(port)))
	list, err := d.Client.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil || len(list) > 0 {
		return false
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort(d.Advertise, strconv.Itoa(port)), time.Second)
	if err == nil {
		c.Close()
		return false
	}
	// Refused is free; a timeout says nothing, so the port is skipped.
	var ne net.Error
	return !errors.As(err, &ne) || !ne.Timeout()
}
