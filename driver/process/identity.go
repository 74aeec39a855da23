package process

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gantry-dev/gantry"
)

var _ gantry.InstanceLister = (*Driver)(nil)

// identity is what the driver writes of each instance it starts, right
// after the process exists and before Start returns: which app,
// environment, slot, service, index and release it is, with its handle. A
// server killed before it persisted the handle finds the instance again by
// it (ListInstances), so that no instance runs unknown to the state. It
// holds no variable of the instance: they carry secrets.
type identity struct {
	App      string          `json:"app"`
	Env      string          `json:"env"`
	Instance gantry.Instance `json:"instance"`
	Slot     string          `json:"slot"`
}

func (d *Driver) identityPath(h handle) string {
	return filepath.Join(d.Dir, "run", h.key()+".instance")
}

// writeIdentity writes the identity file atomically (temp file, fsync,
// rename), so that a crash leaves either the whole record or none.
func (d *Driver) writeIdentity(h handle, id identity) error {
	b, err := json.Marshal(id)
	if err != nil {
		return err
	}
	p := d.identityPath(h)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// ListInstances returns the instances this driver (or the one before a
// restart) started for app's environment env, from their identity files:
// Running says whether the process still runs (same pid and start time).
// The files of processes that are gone are removed on the way.
func (d *Driver) ListInstances(ctx context.Context, app, env string) ([]gantry.FoundInstance, error) {
	dir := filepath.Join(d.Dir, "run")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list instances of %s/%s: %w", app, env, err)
	}
	var out []gantry.FoundInstance
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".instance") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // stopped while we looked
		}
		var id identity
		if json.Unmarshal(b, &id) != nil || id.App != app || id.Env != env {
			continue
		}
		h, err := decodeHandle(id.Instance)
		if err != nil {
			continue
		}
		ls, err := leader(h.PID, h.StartTime)
		if err != nil {
			return nil, fmt.Errorf("list instances of %s/%s: %w", app, env, err)
		}
		running := ls == leaderRunning
		if !running && ls != leaderZombie {
			// Neither it nor its group can run again: a reused pid or no
			// process at all. Its record is of no further use.
			if alive, _ := groupAlive(h.PGID); !alive || ls == leaderReused {
				_ = os.Remove(filepath.Join(dir, e.Name()))
				continue
			}
		}
		out = append(out, gantry.FoundInstance{Instance: id.Instance, Slot: id.Slot, Running: running})
	}
	return out, nil
}
