package manifest

import (
	"math"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
	"gopkg.in/yaml.v3"
)

// Bounds of the watch settings. A window holds the environment's lock, so it
// is kept short enough not to block the next deploy for long.
const (
	maxWatchWindow      = time.Hour
	maxWatchMinRequests = 1_000_000
)

// watch decodes environments.<env>.watch; an empty or null mapping turns the
// watch on with every default.
func (d *decoder) watch(n *yaml.Node, path string) *gantry.WatchSpec {
	w := &gantry.WatchSpec{
		Window:          gantry.DefaultWatchWindow,
		MaxErrorRate:    gantry.DefaultWatchErrorRate,
		MaxLatencyRatio: gantry.DefaultWatchLatencyRatio,
		MinRequests:     gantry.DefaultWatchMinRequests,
	}
	fs := d.mapping(n, path, "environments.<env>.watch")
	if f, ok := fs["window"]; ok {
		p := join(path, "window")
		if v, ok := d.duration(f.val, p, false); ok {
			if v > maxWatchWindow {
				d.addf(resolve(f.val), p, "window %s is too long: at most %s, because the environment stays locked while it is watched", formatDuration(v), formatDuration(maxWatchWindow))
			} else {
				w.Window = v
			}
		}
	}
	if f, ok := fs["max_error_rate"]; ok {
		if v, ok := d.number(f.val, join(path, "max_error_rate"), 0, 1, "a share from 0 to 1, such as 0.05 for 5%"); ok {
			w.MaxErrorRate = v
		}
	}
	if f, ok := fs["max_latency_ratio"]; ok {
		p := join(path, "max_latency_ratio")
		if v, ok := d.number(f.val, p, 0, 1000, "a multiple of the previous release's latency, such as 2, or 0 to leave latency unchecked"); ok {
			if v != 0 && v < 1 {
				d.addf(resolve(f.val), p, "%s would roll back a release as fast as the previous one: want 1 or more, or 0 to leave latency unchecked", strconv.FormatFloat(v, 'g', -1, 64))
			} else {
				w.MaxLatencyRatio = v
			}
		}
	}
	if f, ok := fs["min_requests"]; ok {
		if v, ok := d.integer(f.val, join(path, "min_requests"), 1, maxWatchMinRequests); ok {
			w.MinRequests = v
		}
	}
	return w
}

// checkWatch reports settings that would make the watch unable to roll back:
// the rollback flips traffic to the previous release, which must still run.
func (d *decoder) checkWatch(e *gantry.EnvironmentSpec, key *yaml.Node, path string) {
	if e.Watch == nil {
		return
	}
	switch {
	case e.Strategy == gantry.StrategyRestart:
		d.addf(key, path, "the restart strategy keeps no previous release to roll back to; use bluegreen (or maintenance) with a watch")
	case e.KeepWarm < e.Watch.Window:
		d.addf(key, path, "keep_warm (%s) is shorter than the watch window (%s): the previous release would be stopped before the watch could roll back to it",
			formatDuration(e.KeepWarm), formatDuration(e.Watch.Window))
	}
}

// number reads an integer or a decimal within [lo, hi]; want describes the
// expected value in the problem it reports.
func (d *decoder) number(n *yaml.Node, path string, lo, hi float64, want string) (float64, bool) {
	n = resolve(n)
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!float") {
		d.addf(n, path, "want %s, got %s", want, describe(n))
		return 0, false
	}
	var v float64
	if err := n.Decode(&v); err != nil || math.IsNaN(v) || v < lo || v > hi {
		d.addf(n, path, "%s is out of range: want %s", clip(n.Value), want)
		return 0, false
	}
	return v, true
}
