package process

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
)

// handle is what Start persists through Instance.Handle. It holds what is
// needed to find the process again after a restart, and never the spec's
// Vars: they may carry secrets and the orchestrator stores handles.
type handle struct {
	PID  int `json:"pid"`
	PGID int `json:"pgid"`
	// StartTime is field 22 of /proc/<pid>/stat (clock ticks since boot):
	// pid and start time together survive pid reuse.
	StartTime uint64 `json:"start_time"`
	Log       string `json:"log"`
	Command   string `json:"command"`
	Release   string `json:"release_dir"`
}

// key names one process for the life of the machine.
func (h handle) key() string {
	return strconv.Itoa(h.PID) + "-" + strconv.FormatUint(h.StartTime, 10)
}

func (h handle) encode() string {
	b, _ := json.Marshal(h)
	return string(b)
}

// decodeHandle reads an Instance's handle. Every instance is started in a
// group of its own, so a handle whose group is not its pid was not written
// by this driver; refusing it keeps Stop from signalling someone else's group.
func decodeHandle(inst gantry.Instance) (handle, error) {
	var h handle
	if err := json.Unmarshal([]byte(inst.Handle), &h); err != nil {
		return h, gantry.Errorf(gantry.EINVALID, "instance %s-%d: handle is not a process driver handle", inst.Service, inst.Index)
	}
	if h.PID <= 1 || h.PGID != h.PID || h.StartTime == 0 {
		return h, gantry.Errorf(gantry.EINVALID, "instance %s-%d: handle names no process of its own group (pid %d, pgid %d)", inst.Service, inst.Index, h.PID, h.PGID)
	}
	return h, nil
}

// exitRecord is written by the reaper when an instance started by this
// driver exits, so that a driver value created after a restart can still
// tell "exited with code 3" from "gone".
type exitRecord struct {
	Code   int       `json:"code"`
	Detail string    `json:"detail"`
	At     time.Time `json:"at"`
}

func (d *Driver) exitPath(h handle) string {
	return filepath.Join(d.Dir, "run", h.key()+".exit")
}

func (d *Driver) writeExit(h handle, rec exitRecord) error {
	b, _ := json.Marshal(rec)
	p := d.exitPath(h)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func (d *Driver) readExit(h handle) (exitRecord, bool) {
	var rec exitRecord
	b, err := os.ReadFile(d.exitPath(h))
	if err != nil {
		return rec, false
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return rec, false
	}
	return rec, true
}

func (rec exitRecord) state() gantry.InstanceState {
	return gantry.InstanceState{State: gantry.InstanceExited, ExitCode: rec.Code, Detail: rec.Detail}
}

func describe(inst gantry.Instance, h handle) string {
	return fmt.Sprintf("instance %s-%d (pid %d)", inst.Service, inst.Index, h.PID)
}
