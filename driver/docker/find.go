package docker

import (
	"context"
	"fmt"
	"net"
	"sort"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/gantry-dev/gantry"
)

// Found is a container of Gantry's, found by its labels.
type Found struct {
	Instance gantry.Instance
	App      string
	Env      string
	Slot     string
	Release  string
	Image    string // repository@sha256:… it was started from
	Running  bool
}

// Find lists the containers Gantry started for app (and env, and slot, when
// not empty), running or not, ordered by slot, service and index. A server
// that lost the handles of what it started (killed between starting a
// container and persisting its handle) finds its instances here; Attach and
// Stop take the returned Instances.
func (d *Driver) Find(ctx context.Context, app, env, slot string) ([]Found, error) {
	if app == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "find containers: an app is required")
	}
	f := filters.NewArgs(filters.Arg("label", LabelApp+"="+app))
	if env != "" {
		f.Add("label", LabelEnv+"="+env)
	}
	if slot != "" {
		f.Add("label", LabelSlot+"="+slot)
	}
	list, err := d.Client.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("find containers of %s: %w", app, err)
	}
	out := make([]Found, 0, len(list))
	for _, c := range list {
		l := c.Labels
		index, err := strconv.Atoi(l[LabelInstance])
		if err != nil || l[LabelService] == "" {
			continue // labelled by hand: not one of ours
		}
		inst := gantry.Instance{Service: l[LabelService], Index: index, Handle: c.ID, StartedAt: time.Unix(c.Created, 0)}
		if p := l[LabelPort]; p != "" {
			inst.Addr = net.JoinHostPort(d.listenHost(), p)
		}
		out = append(out, Found{
			Instance: inst, App: l[LabelApp], Env: l[LabelEnv], Slot: l[LabelSlot], Release: l[LabelRelease],
			Image: c.Image, Running: c.State == "running" || c.State == "restarting" || c.State == "paused",
		})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Env != b.Env {
			return a.Env < b.Env
		}
		if a.Slot != b.Slot {
			return a.Slot < b.Slot
		}
		if a.Instance.Service != b.Instance.Service {
			return a.Instance.Service < b.Instance.Service
		}
		return a.Instance.Index < b.Instance.Index
	})
	return out, nil
}
