package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// startSlot starts every instance of services into slot, persisting each
// instance as soon as it is started so recovery can find it.
func (o *Orchestrator) startSlot(ctx context.Context, env *gantry.Environment, drv gantry.Driver, slot *gantry.Slot, rel *gantry.Release, m *gantry.Manifest, services []*gantry.Service, extra map[string]string) (string, error) {
	vars, err := o.instanceVars(env, rel, slot.Name)
	if err != nil {
		return "", err
	}
	configs := map[string]string{}
	for _, svc := range services {
		configs[svc.Name] = instanceConfig(rel.Artifacts[svc.Name], svc, rel.ServiceVersion(svc.Name), vars)
	}
	for k, v := range extra {
		vars[k] = v
	}
	if err := planAddrs(drv, slot, m); err != nil {
		return "", fmt.Errorf("reserve ports: %w", err)
	}
	for k, v := range discoveryVars(slot) {
		vars[k] = v
	}
	var started []string
	for _, svc := range services {
		persist, err := o.persistDirs(ctx, env, svc)
		if err != nil {
			return "", err
		}
		svcVars := serviceVars(vars, rel, svc, persist)
		art, ok := rel.Artifacts[svc.Name]
		if !ok {
			return "", gantry.Errorf(gantry.EINVALID, "release %s has no artifact for service %s", rel.ID, svc.Name)
		}
		if art, err = placeImage(ctx, drv, env, rel, svc.Name, art); err != nil {
			return "", err
		}
		for i := 1; i <= svc.Instances; i++ {
			// Port 0: the driver picks the instance's port, and knows
			// which it handed out to instances still starting.
			spec := gantry.InstanceSpec{
				App: env.App, Env: env.Name, Slot: slot.Name, Service: svc.Name, Index: i, ReleaseID: rel.ID,
				Artifact: art, Command: svc.Run, Stop: svc.Stop, Health: svc.Health, Runtime: env.Spec.Runtime, Vars: svcVars,
				Port: plannedPort(slot, svc.Name, i), Persist: persist,
			}
			inst, err := drv.Start(ctx, spec)
			if err != nil {
				return "", fmt.Errorf("start %s-%d: %w", svc.Name, i, err)
			}
			inst.Config, inst.Version = configs[svc.Name], rel.ServiceVersion(svc.Name)
			slot.Instances = append(slot.Instances, inst)
			if err := o.saveEnv(ctx, env); err != nil {
				return "", err
			}
			started = append(started, fmt.Sprintf("%s-%d@%s", svc.Name, i, inst.Addr))
		}
	}
	if len(started) == 0 {
		return "", errNoInstances
	}
	return strings.Join(started, " "), nil
}

// placeImage puts a service's image where env's runtime runs it, when the
// driver places images (a registry copy, an image stream tag), and returns
// the artifact to run: the same digest, checked, possibly another
// repository.
func placeImage(ctx context.Context, drv gantry.Driver, env *gantry.Environment, rel *gantry.Release, service string, art gantry.Artifact) (gantry.Artifact, error) {
	p, ok := drv.(gantry.ImagePlacer)
	if !ok || art.Kind != gantry.ArtifactImage {
		return art, nil
	}
	placed, err := p.PlaceImage(ctx, art, gantry.ImagePlace{App: env.App, Env: env.Name, Service: service, Version: rel.Version, Runtime: env.Spec.Runtime})
	if err != nil {
		return art, fmt.Errorf("image of %s: %w", service, err)
	}
	if placed.Digest != art.Digest {
		return art, gantry.Errorf(gantry.EINTERNAL, "image of %s arrived as %s, not %s", service, placed.Digest, art.Digest)
	}
	return placed, nil
}

// instanceVars builds an instance's environment: the environment's
// variables, its resolved secrets and Gantry's own.
func (o *Orchestrator) instanceVars(env *gantry.Environment, rel *gantry.Release, slot string) (map[string]string, error) {
	vars := map[string]string{}
	for k, v := range env.ExpandedVars() {
		vars[k] = v
	}
	for _, name := range env.Spec.Secrets {
		v, ok := o.secretValue(env.App, env.Name, name)
		if !ok {
			return nil, gantry.Errorf(gantry.EINVALID, "secret %s referenced by environment %s is not set on the server", name, env.Name)
		}
		vars[name] = v
	}
	vars["GANTRY_VERSION"] = rel.Version
	vars["GANTRY_COMMIT"] = rel.Commit
	return vars, nil
}

// ServiceVersionVar tells an instance the version of its own service
// (services.<service>.version_file or a "<service>/v…" tag), which is the
// release's (GANTRY_VERSION) when the service has none of its own.
const ServiceVersionVar = "GANTRY_SERVICE_VERSION"

// serviceVars are the slot's variables plus what is svc's own: its
// version and its persistent directories.
func serviceVars(vars map[string]string, rel *gantry.Release, svc *gantry.Service, persist map[string]string) map[string]string {
	out := withPersistVars(vars, persist)
	out[ServiceVersionVar] = rel.ServiceVersion(svc.Name)
	return out
}

// stopSlot stops every instance of slot (in reverse rollout order) and
// marks it stopped.
func (o *Orchestrator) stopSlot(ctx context.Context, env *gantry.Environment, drv gantry.Driver, slot *gantry.Slot, m *gantry.Manifest) error {
	if err := o.checkFence(ctx); err != nil {
		return err
	}
	var firstErr error
	for i := len(slot.Instances) - 1; i >= 0; i-- {
		inst := slot.Instances[i]
		stop := gantry.StopSpec{Signal: "SIGTERM", Timeout: gantry.DefaultStopTimeout}
		if m != nil {
			if svc := m.Services[inst.Service]; svc != nil {
				stop = svc.Stop
			}
		}
		if err := drv.Stop(ctx, inst, stop); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("stop %s-%d: %w", inst.Service, inst.Index, err)
		}
	}
	if firstErr != nil {
		return firstErr
	}
	slot.Instances = nil
	slot.Addrs = nil
	slot.State = gantry.SlotStopped
	slot.WarmUntil = time.Time{}
	return o.saveEnv(ctx, env)
}

// waitHealthy waits until every instance of slot passes its health check
// (HTTP services) or is still running after its ready delay (workers).
func (o *Orchestrator) waitHealthy(ctx context.Context, drv gantry.Driver, slot *gantry.Slot, m *gantry.Manifest) (string, error) {
	start := time.Now()
	for _, inst := range slot.Instances {
		svc := m.Services[inst.Service]
		if svc == nil {
			continue
		}
		if err := o.waitInstance(ctx, drv, inst, svc); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("%d instances healthy in %s", len(slot.Instances), time.Since(start).Round(time.Millisecond)), nil
}

// healthDeadline is how long an instance may take to become healthy.
const healthDeadline = 60 * time.Second

func (o *Orchestrator) waitInstance(ctx context.Context, drv gantry.Driver, inst gantry.Instance, svc *gantry.Service) error {
	name := fmt.Sprintf("%s-%d", inst.Service, inst.Index)
	interval := svc.Health.Interval
	if interval <= 0 || interval > time.Second {
		interval = 100 * time.Millisecond // a first success is worth finding fast
	}
	deadline := time.Now().Add(healthDeadline)
	if !svc.HTTP || svc.Health.Path == "" {
		if svc.Ready > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(svc.Ready):
			}
		}
		st, err := drv.Inspect(ctx, inst)
		if err != nil {
			return err
		}
		if st.State != gantry.InstanceRunning {
			return gantry.Errorf(gantry.EUNAVAILABLE, "instance %s is %s (exit code %d)", name, st.State, st.ExitCode)
		}
		return nil
	}
	need := svc.Health.WithDefaults().HealthyAfter
	ok := 0
	var last string
	for {
		if err := o.probe(ctx, inst.Addr, svc.Health); err != nil {
			ok = 0
			last = err.Error()
			if st, ierr := drv.Inspect(ctx, inst); ierr == nil && st.State != gantry.InstanceRunning {
				return gantry.Errorf(gantry.EUNAVAILABLE, "instance %s %s (exit code %d) before it became healthy; last check: %s", name, st.State, st.ExitCode, last)
			}
		} else if ok++; ok >= need {
			return nil
		}
		if time.Now().After(deadline) {
			return gantry.Errorf(gantry.EUNAVAILABLE, "instance %s did not become healthy within %s: %s", name, healthDeadline, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}

func (o *Orchestrator) probe(ctx context.Context, addr string, hc gantry.HealthCheck) error {
	hc = hc.WithDefaults()
	ctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+hc.Path, nil)
	if err != nil {
		return err
	}
	resp, err := o.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %s", hc.Path, shortErr(err))
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	if resp.StatusCode < hc.StatusMin || resp.StatusCode > hc.StatusMax {
		return fmt.Errorf("GET %s: status %d", hc.Path, resp.StatusCode)
	}
	return nil
}

func shortErr(err error) string {
	s := err.Error()
	switch {
	case strings.Contains(s, "connection refused"):
		return "connection refused"
	case strings.Contains(s, "deadline exceeded"), strings.Contains(s, "Client.Timeout"):
		return "timeout"
	}
	return s
}

// failureLogs returns the last log lines of the candidate's instances that
// are not running, or of all when each runs, for the deployment's record.
// An instance may print its own environment, so the excerpt is masked
// before it goes anywhere: the error, journal, events and hooks all
// receive it from here. failureLogs is not told the slot's environment, so
// it masks the secrets (and DATABASE_URL) of every environment the store
// knows, a superset of what the instances were given; when those cannot be
// read, the lines are withheld rather than shown unmasked.
func (o *Orchestrator) failureLogs(ctx context.Context, drv gantry.Driver, slot *gantry.Slot) string {
	var b strings.Builder
	for _, inst := range slot.Instances {
		var buf bytes.Buffer
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		err := drv.Logs(lctx, inst, 20, false, &buf)
		cancel()
		if err != nil || buf.Len() == 0 {
			continue
		}
		fmt.Fprintf(&b, "last log lines of %s-%d:\n%s", inst.Service, inst.Index, strings.TrimRight(buf.String(), "\n"))
		b.WriteString("\n")
	}
	if b.Len() == 0 {
		return ""
	}
	m, err := o.secretMasker(ctx)
	if err != nil {
		o.logger().Warn("instance log lines withheld: the secrets to mask are unknown", "error", err)
		return "(last log lines withheld: the secrets to mask in them could not be read)"
	}
	return strings.TrimRight(m.Mask(b.String()), "\n")
}

// secretMasker masks every secret value the server holds for any
// environment (and every database URL): output of the app's own processes
// (instance logs, verify commands) may print any of them, and it is kept in
// errors, journal steps, events and the evidence.
func (o *Orchestrator) secretMasker(ctx context.Context) (gantry.Masker, error) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	secrets := map[string]string{}
	apps, err := o.Store.ListApps(sctx)
	for _, app := range apps {
		var envs []*gantry.Environment
		if envs, err = o.Store.ListEnvironments(sctx, app.Name); err != nil {
			break
		}
		for _, env := range envs {
			for _, name := range append(slices.Clone(env.Spec.Secrets), DatabaseURLSecret) {
				if v, ok := o.secretValue(env.App, env.Name, name); ok {
					secrets[env.App+"/"+env.Name+"/"+name] = v
				}
			}
		}
	}
	if err != nil {
		return gantry.Masker{}, err
	}
	return gantry.NewMasker(secrets), nil
}
