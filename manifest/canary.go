package manifest

import (
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
	"gopkg.in/yaml.v3"
)

// Bounds of the canary settings. A canary holds the environment's lock for
// all of its steps, so each step is bounded like a watch window.
const (
	maxCanarySteps      = 20
	maxCanaryStep       = time.Hour
	maxCanaryRequests   = 10_000_000
	maxCanaryExtensions = 20
	maxCanarySticky     = 24 * time.Hour
)

var (
	onInconclusive = []string{gantry.CanaryOnInconclusiveFail, gantry.CanaryOnInconclusivePass}
	headerName     = lazyre.New(`^[A-Za-z0-9!#$%&'*+.^_|~-]+$`)
)

// canary decodes environments.<env>.canary.
func (d *decoder) canary(n *yaml.Node, path string) *gantry.CanarySpec {
	c := &gantry.CanarySpec{
		Sticky:         gantry.DefaultCanarySticky,
		MinRequests:    gantry.DefaultCanaryMinRequests,
		MaxExtensions:  gantry.DefaultCanaryMaxExtensions,
		OnInconclusive: gantry.CanaryOnInconclusiveFail,
		LatencyMs:      gantry.DefaultCanaryLatencyMs,
		LatencyPercent: gantry.DefaultCanaryLatencyPct,
		ErrorRate:      gantry.DefaultCanaryErrorRate,
	}
	fs := d.mapping(n, path, "environments.<env>.canary")
	if f, ok := d.require(fs, n, path, "steps"); ok {
		p := join(path, "steps")
		items := d.list(f.val, p)
		if len(items) == 0 || len(items) > maxCanarySteps {
			d.addf(resolve(f.val), p, "list 1 to %d steps, such as [{weight: 5, duration: 1m}, {weight: 50, requests: 1000}]", maxCanarySteps)
		}
		last := -1
		for i, item := range items {
			ip := index(p, i)
			s, ok := d.canaryStep(item, ip)
			if !ok {
				continue
			}
			if s.Weight <= last {
				d.addf(resolve(item), ip, "weight %d does not grow: the step before has %d", s.Weight, last)
			}
			last = s.Weight
			c.Steps = append(c.Steps, s)
		}
	}
	if f, ok := fs["sticky"]; ok {
		p := join(path, "sticky")
		if v, ok := d.duration(f.val, p, true); ok {
			if v > maxCanarySticky {
				d.addf(resolve(f.val), p, "sticky %s is too long: at most %s", formatDuration(v), formatDuration(maxCanarySticky))
			} else {
				c.Sticky = v
			}
		}
	}
	if f, ok := fs["match"]; ok {
		c.Match = d.canaryMatch(f.val, join(path, "match"))
	}
	if len(c.Steps) > 0 && c.Steps[0].Weight == 0 && c.Match == nil {
		d.addf(fs["steps"].key, join(path, "steps"), "a 0%% step sends the candidate only the requests a match rule picks: add a match, such as match: {header: X-Gantry-Canary}")
	}
	if f, ok := fs["min_requests"]; ok {
		if v, ok := d.integer(f.val, join(path, "min_requests"), 1, maxCanaryRequests); ok {
			c.MinRequests = v
		}
	}
	if f, ok := fs["max_extensions"]; ok {
		if v, ok := d.integer(f.val, join(path, "max_extensions"), 0, maxCanaryExtensions); ok {
			c.MaxExtensions = v
		}
	}
	if f, ok := fs["on_inconclusive"]; ok {
		if s, ok := d.oneOf(f.val, join(path, "on_inconclusive"), onInconclusive); ok {
			c.OnInconclusive = s
		}
	}
	if f, ok := fs["latency_ms"]; ok {
		if v, ok := d.number(f.val, join(path, "latency_ms"), 0, 60_000, "milliseconds from 0 to 60000"); ok {
			c.LatencyMs = v
		}
	}
	if f, ok := fs["latency_percent"]; ok {
		if v, ok := d.number(f.val, join(path, "latency_percent"), 0, 1000, "a percent from 0 to 1000"); ok {
			c.LatencyPercent = v
		}
	}
	if f, ok := fs["error_rate"]; ok {
		if v, ok := d.number(f.val, join(path, "error_rate"), 0, 1, "a share from 0 to 1, such as 0.01 for one point"); ok {
			c.ErrorRate = v
		}
	}
	return c
}

func (d *decoder) canaryStep(n *yaml.Node, path string) (gantry.CanaryStep, bool) {
	var s gantry.CanaryStep
	fs := d.mapping(n, path, "environments.<env>.canary.steps[]")
	f, ok := d.require(fs, n, path, "weight")
	if !ok {
		return s, false
	}
	if s.Weight, ok = d.integer(f.val, join(path, "weight"), 0, 99); !ok {
		return s, false
	}
	if f, ok := fs["duration"]; ok {
		p := join(path, "duration")
		if v, ok := d.duration(f.val, p, false); ok {
			if v > maxCanaryStep {
				d.addf(resolve(f.val), p, "duration %s is too long: at most %s, because the environment stays locked meanwhile", formatDuration(v), formatDuration(maxCanaryStep))
			}
			s.Duration = v
		}
	}
	if f, ok := fs["requests"]; ok {
		s.Requests, _ = d.integer(f.val, join(path, "requests"), 1, maxCanaryRequests)
	}
	if s.Duration == 0 && s.Requests == 0 {
		d.addf(resolve(n), path, "give the step a duration (such as 30s) or a number of requests, or both")
		return s, false
	}
	return s, true
}

func (d *decoder) canaryMatch(n *yaml.Node, path string) *gantry.CanaryMatch {
	m := &gantry.CanaryMatch{}
	fs := d.mapping(n, path, "environments.<env>.canary.match")
	for _, k := range []struct {
		name string
		dst  *string
	}{{"header", &m.Header}, {"cookie", &m.Cookie}} {
		if f, ok := fs[k.name]; ok {
			if s, ok := d.nonEmpty(f.val, join(path, k.name)); ok {
				if !headerName.MatchString(s) {
					d.addf(resolve(f.val), join(path, k.name), "%q is not a valid %s name", clip(s), k.name)
				}
				*k.dst = s
			}
		}
	}
	if f, ok := fs["value"]; ok {
		m.Value, _ = d.str(f.val, join(path, "value"))
	}
	if (m.Header == "") == (m.Cookie == "") {
		d.addf(resolve(n), path, "name one header or one cookie, such as {header: X-Gantry-Canary, value: \"1\"}")
		return nil
	}
	return m
}

// checkCanary ties the strategy and the canary block together: each needs
// the other, and the previous release must outlive the sticky bound.
func (d *decoder) checkCanary(e *gantry.EnvironmentSpec, fs map[string]field, path string) {
	f, has := fs["canary"]
	switch {
	case e.Strategy == gantry.StrategyCanary && !has:
		d.addf(fs["strategy"].val, join(path, "strategy"), "strategy canary needs a canary block with its steps, such as canary: {steps: [{weight: 5, duration: 1m}]}")
	case has && e.Strategy != gantry.StrategyCanary:
		d.addf(f.key, join(path, "canary"), "a canary block needs strategy: canary")
	case has && e.Canary != nil && e.KeepWarm < e.Canary.Sticky:
		d.addf(f.key, join(path, "canary"), "keep_warm (%s) is shorter than canary.sticky (%s): the previous release would stop while clients still stick to it",
			formatDuration(e.KeepWarm), formatDuration(e.Canary.Sticky))
	}
}
