package manifest

import (
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"gopkg.in/yaml.v3"
)

// Defaults that only this package applies.
const (
	defaultDockerfile  = "Dockerfile"
	defaultContext     = "."
	defaultStopSignal  = "SIGTERM"
	defaultReadyDelay  = time.Second
	maxInstances       = 100
	maxOrder           = 1000
	maxHealthyAfter    = 100
	defaultCheckStatus = 200
)

func (d *decoder) services(n *yaml.Node, path string) map[string]*gantry.Service {
	fs := d.entries(n, path)
	if len(fs) == 0 {
		if isNull(resolve(n)) || resolve(n).Kind == yaml.MappingNode {
			d.addf(resolve(n), path, "declare at least one service")
		}
		return nil
	}
	out := map[string]*gantry.Service{}
	at := map[string]*yaml.Node{} // where each service's route (or the service) is written
	reqAt := map[string]*yaml.Node{}
	for _, f := range fs {
		p := join(path, f.key.Value)
		if !d.checkName(f.key, p, "service", f.key.Value) {
			continue
		}
		out[f.key.Value] = d.service(f.key.Value, f.val, p)
		if resolve(f.val).Kind != yaml.MappingNode {
			continue // reported; a route conflict would only add noise
		}
		at[f.key.Value] = f.key
		if k := keyNode(f.val, "route"); k != nil {
			at[f.key.Value] = k
		}
		if k := keyNode(f.val, "requires"); k != nil {
			reqAt[f.key.Value] = k
		}
	}
	d.checkRoutes(out, at, path)
	d.checkRequires(out, reqAt, path)
	return out
}

func (d *decoder) service(name string, n *yaml.Node, path string) *gantry.Service {
	s := &gantry.Service{Name: name, HTTP: true, Instances: gantry.DefaultInstances}
	fs := d.mapping(n, path, "services.<service>")
	if v := resolve(n); !isNull(v) && v.Kind != yaml.MappingNode {
		return s // reported by mapping; "required key missing" would only add noise
	}

	b, hasBuild := fs["build"]
	dk, hasDocker := fs["docker"]
	switch {
	case hasBuild && hasDocker:
		d.addf(dk.key, join(path, "docker"), "a service is built either by build or by docker, not both")
	case hasBuild:
		s.Build = d.build(b.val, join(path, "build"))
	case hasDocker:
		s.Docker = d.docker(dk.val, join(path, "docker"))
	default:
		d.addf(n, join(path, "build"), "required key missing: say how the service is built, with build or docker")
	}
	if f, ok := d.require(fs, n, path, "run"); ok {
		s.Run, _ = d.nonEmpty(f.val, join(path, "run"))
	}
	if f, ok := fs["http"]; ok {
		if v, ok := d.boolean(f.val, join(path, "http")); ok {
			s.HTTP = v
		}
	}
	if f, ok := fs["instances"]; ok {
		if v, ok := d.integer(f.val, join(path, "instances"), 1, maxInstances); ok {
			s.Instances = v
		}
	}
	if f, ok := fs["order"]; ok {
		s.Order, _ = d.integer(f.val, join(path, "order"), 0, maxOrder)
	}
	healthPathSet := false
	if f, ok := fs["health"]; ok {
		healthPathSet = d.health(f.val, join(path, "health"), &s.Health)
	}
	s.Stop = gantry.StopSpec{Signal: defaultStopSignal, Timeout: gantry.DefaultStopTimeout}
	if f, ok := fs["stop"]; ok {
		d.stop(f.val, join(path, "stop"), &s.Stop)
	}
	if f, ok := fs["ready_delay"]; ok {
		if s.HTTP {
			d.addf(f.key, join(path, "ready_delay"), "ready_delay is for services with http: false; an http service is ready when its health check passes")
		} else {
			s.Ready, _ = d.duration(f.val, join(path, "ready_delay"), true)
		}
	} else if !s.HTTP && !healthPathSet {
		s.Ready = defaultReadyDelay
	}
	if f, ok := fs["route"]; ok {
		s.Route = d.route(f.val, join(path, "route"), s)
	}
	if f, ok := fs["version_file"]; ok {
		s.VersionFile, _ = d.relPath(f.val, join(path, "version_file"))
	}
	if f, ok := fs["requires"]; ok {
		s.Requires = d.requires(f.val, join(path, "requires"))
	}
	if f, ok := fs["persist"]; ok {
		s.Persist = d.stringList(f.val, join(path, "persist"), func(item *yaml.Node, p, name string) bool {
			return d.checkName(item, p, "persistent directory", name)
		})
	}

	// Defaults that depend on other keys, applied once the keys are read.
	if s.HTTP && !healthPathSet {
		s.Health.Path = gantry.DefaultHealthPath
	}
	s.Health = s.Health.WithDefaults()
	return s
}

func (d *decoder) build(n *yaml.Node, path string) *gantry.BuildSpec {
	b := &gantry.BuildSpec{}
	fs := d.mapping(n, path, "services.<service>.build")
	if f, ok := fs["command"]; ok {
		b.Command, _ = d.nonEmpty(f.val, join(path, "command"))
	}
	if f, ok := d.require(fs, n, path, "artifacts"); ok {
		p, v := join(path, "artifacts"), resolve(f.val)
		b.Artifacts = d.stringList(v, p, func(item *yaml.Node, p, _ string) bool {
			_, ok := d.relPath(item, p)
			return ok
		})
		if isNull(v) || (v.Kind == yaml.SequenceNode && len(v.Content) == 0) {
			d.addf(v, p, "list at least one file or directory that the build produces")
		}
	}
	return b
}

func (d *decoder) docker(n *yaml.Node, path string) *gantry.DockerSpec {
	s := &gantry.DockerSpec{Dockerfile: defaultDockerfile, Context: defaultContext}
	fs := d.mapping(n, path, "services.<service>.docker")
	if f, ok := fs["dockerfile"]; ok {
		s.Dockerfile, _ = d.relPath(f.val, join(path, "dockerfile"))
	}
	if f, ok := fs["context"]; ok {
		s.Context, _ = d.relPath(f.val, join(path, "context"))
	}
	if f, ok := fs["target"]; ok {
		s.Target, _ = d.str(f.val, join(path, "target"))
	}
	if f, ok := fs["args"]; ok {
		s.Args = d.stringMap(f.val, join(path, "args"), nil)
	}
	return s
}

// health reads a health check into h and reports whether it set the path.
func (d *decoder) health(n *yaml.Node, path string, h *gantry.HealthCheck) (pathSet bool) {
	fs := d.mapping(n, path, "services.<service>.health")
	if f, ok := fs["path"]; ok {
		h.Path, pathSet = d.urlPath(f.val, join(path, "path"))
	}
	if f, ok := fs["interval"]; ok {
		h.Interval, _ = d.duration(f.val, join(path, "interval"), false)
	}
	if f, ok := fs["timeout"]; ok {
		h.Timeout, _ = d.duration(f.val, join(path, "timeout"), false)
	}
	if f, ok := fs["healthy_after"]; ok {
		h.HealthyAfter, _ = d.integer(f.val, join(path, "healthy_after"), 1, maxHealthyAfter)
	}
	if f, ok := fs["status"]; ok {
		h.StatusMin, h.StatusMax, _ = d.statusRange(f.val, join(path, "status"))
	}
	return pathSet
}

// statusRange reads accepted HTTP statuses: 200, "200-299" or "2xx".
func (d *decoder) statusRange(n *yaml.Node, path string) (lo, hi int, ok bool) {
	n = resolve(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int" {
		v, ok := d.integer(n, path, 100, 599)
		return v, v, ok
	}
	s, ok := d.str(n, path)
	if !ok {
		return 0, 0, false
	}
	bad := func() (int, int, bool) {
		d.addf(n, path, "invalid status range %q: want a code (200), a range (200-299) or a class (2xx) within 100-599", clip(s))
		return 0, 0, false
	}
	if len(s) == 3 && strings.HasSuffix(s, "xx") && s[0] >= '1' && s[0] <= '5' {
		c := int(s[0]-'0') * 100
		return c, c + 99, true
	}
	a, b, found := strings.Cut(s, "-")
	if !found {
		b = a
	}
	lo, err1 := strconv.Atoi(strings.TrimSpace(a))
	hi, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || lo < 100 || hi > 599 || lo > hi {
		return bad()
	}
	return lo, hi, true
}

func (d *decoder) stop(n *yaml.Node, path string, s *gantry.StopSpec) {
	fs := d.mapping(n, path, "services.<service>.stop")
	if f, ok := fs["signal"]; ok {
		p := join(path, "signal")
		if sig, ok := d.str(f.val, p); ok {
			norm := strings.ToUpper(sig)
			if !strings.HasPrefix(norm, "SIG") {
				norm = "SIG" + norm
			}
			if contains(stopSignals, norm) {
				s.Signal = norm
			} else {
				d.addf(resolve(f.val), p, "unknown signal %q: want one of %s%s", clip(sig), strings.Join(stopSignals, ", "), didYouMean(norm, stopSignals))
			}
		}
	}
	if f, ok := fs["timeout"]; ok {
		if v, ok := d.duration(f.val, join(path, "timeout"), false); ok {
			s.Timeout = v
		}
	}
}
