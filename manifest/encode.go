package manifest

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"gopkg.in/yaml.v3"
)

// Encode renders a decoded manifest as gantry.yml with every default written
// out: the effective configuration, for `gantry manifest show` and for
// documentation. Decoding the result gives back an equal manifest.
func Encode(m *gantry.Manifest) ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(toYAML(m)); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return b.Bytes(), nil
}

// The y* types mirror the schema in key order, so that the output reads like
// the reference; yaml.v3 keeps struct field order and sorts map keys.
type (
	yManifest struct {
		App          string                  `yaml:"app"`
		Version      yVersion                `yaml:"version"`
		Services     map[string]yService     `yaml:"services"`
		Verify       []yVerify               `yaml:"verify,omitempty"`
		Database     *yDatabase              `yaml:"database,omitempty"`
		Hooks        map[string][]yHook      `yaml:"hooks,omitempty"`
		Notify       []yNotify               `yaml:"notify,omitempty"`
		Environments map[string]yEnvironment `yaml:"environments"`
		Triggers     []yTrigger              `yaml:"triggers,omitempty"`
		Previews     *yPreviews              `yaml:"previews,omitempty"`
	}
	yTrigger struct {
		On     string `yaml:"on"`
		Branch string `yaml:"branch,omitempty"`
		Do     string `yaml:"do"`
		Env    string `yaml:"env,omitempty"`
	}
	yPreviews struct {
		From     string `yaml:"from"`
		Host     string `yaml:"host"`
		TTL      string `yaml:"ttl"`
		Max      int    `yaml:"max"`
		Data     string `yaml:"data"`
		PostCopy string `yaml:"post_copy,omitempty"`
	}
	yVersion struct {
		Scheme string `yaml:"scheme"`
	}
	yService struct {
		Build      *yBuild  `yaml:"build,omitempty"`
		Docker     *yDocker `yaml:"docker,omitempty"`
		Run        string   `yaml:"run"`
		HTTP       bool     `yaml:"http"`
		Instances  int      `yaml:"instances"`
		Health     yHealth  `yaml:"health"`
		Stop       yStop    `yaml:"stop"`
		Order      int      `yaml:"order"`
		ReadyDelay string   `yaml:"ready_delay,omitempty"`
		Route      *yRoute  `yaml:"route,omitempty"`
		// VersionFile and Requires as written.
		VersionFile string            `yaml:"version_file,omitempty"`
		Requires    map[string]string `yaml:"requires,omitempty"`
		Persist     []string          `yaml:"persist,omitempty"`
	}
	yRoute struct {
		Hosts []string `yaml:"hosts,omitempty"`
		Path  string   `yaml:"path,omitempty"`
	}
	yBuild struct {
		Command   string   `yaml:"command,omitempty"`
		Artifacts []string `yaml:"artifacts"`
	}
	yDocker struct {
		Dockerfile string            `yaml:"dockerfile"`
		Context    string            `yaml:"context"`
		Target     string            `yaml:"target,omitempty"`
		Args       map[string]string `yaml:"args,omitempty"`
	}
	yHealth struct {
		Path         string `yaml:"path,omitempty"`
		Interval     string `yaml:"interval"`
		Timeout      string `yaml:"timeout"`
		HealthyAfter int    `yaml:"healthy_after"`
		Status       string `yaml:"status,omitempty"`
	}
	yStop struct {
		Signal  string `yaml:"signal"`
		Timeout string `yaml:"timeout"`
	}
	yVerify struct {
		HTTP    *yHTTPCheck `yaml:"http,omitempty"`
		Command string      `yaml:"command,omitempty"`
	}
	yHTTPCheck struct {
		Path     string `yaml:"path"`
		Status   int    `yaml:"status"`
		Contains string `yaml:"contains,omitempty"`
	}
	yDatabase struct {
		Engine         string       `yaml:"engine"`
		Migrations     *yMigrations `yaml:"migrations,omitempty"`
		MigrateOnStart bool         `yaml:"migrate_on_start,omitempty"`
	}
	yMigrations struct {
		Engine     string `yaml:"engine"`
		Dir        string `yaml:"dir,omitempty"`
		Run        string `yaml:"run,omitempty"`
		Compatible bool   `yaml:"compatible,omitempty"`
	}
	yHook struct {
		Command string    `yaml:"command,omitempty"`
		Webhook *yWebhook `yaml:"webhook,omitempty"`
	}
	yWebhook struct {
		URL    string `yaml:"url"`
		Method string `yaml:"method"`
	}
	yNotify struct {
		Slack        string   `yaml:"slack,omitempty"`
		Webhook      string   `yaml:"webhook,omitempty"`
		Environments []string `yaml:"environments,omitempty"`
	}
	yEnvironment struct {
		Hosts       []string          `yaml:"hosts"`
		Runtime     yRuntime          `yaml:"runtime"`
		Strategy    string            `yaml:"strategy"`
		KeepWarm    string            `yaml:"keep_warm"`
		Vars        map[string]string `yaml:"vars,omitempty"`
		Secrets     []string          `yaml:"secrets,omitempty"`
		PromoteFrom string            `yaml:"promote_from,omitempty"`
		Approvals   *yApprovals       `yaml:"approvals,omitempty"`
		Hotfix      *yApprovals       `yaml:"hotfix_approvals,omitempty"`
		Freeze      []yFreeze         `yaml:"freeze,omitempty"`
		ViaClone    bool              `yaml:"migrations_via_clone,omitempty"`
		Watch       *yWatch           `yaml:"watch,omitempty"`
		Canary      *yCanary          `yaml:"canary,omitempty"`
	}
	yCanary struct {
		Steps          []yCanaryStep `yaml:"steps"`
		Sticky         string        `yaml:"sticky"`
		Match          *yCanaryMatch `yaml:"match,omitempty"`
		MinRequests    int           `yaml:"min_requests"`
		MaxExtensions  int           `yaml:"max_extensions"`
		OnInconclusive string        `yaml:"on_inconclusive"`
		LatencyMs      float64       `yaml:"latency_ms"`
		LatencyPercent float64       `yaml:"latency_percent"`
		ErrorRate      float64       `yaml:"error_rate"`
	}
	yCanaryMatch struct {
		Header string `yaml:"header,omitempty"`
		Cookie string `yaml:"cookie,omitempty"`
		Value  string `yaml:"value,omitempty"`
	}
	yCanaryStep struct {
		Weight   int    `yaml:"weight"`
		Duration string `yaml:"duration,omitempty"`
		Requests int    `yaml:"requests,omitempty"`
	}
	yWatch struct {
		Window          string  `yaml:"window"`
		MaxErrorRate    float64 `yaml:"max_error_rate"`
		MaxLatencyRatio float64 `yaml:"max_latency_ratio"`
		MinRequests     int     `yaml:"min_requests"`
	}
	yFreeze struct {
		From   string `yaml:"from"`
		To     string `yaml:"to"`
		Reason string `yaml:"reason,omitempty"`
	}
	yRuntime struct {
		Driver    string `yaml:"driver"`
		Registry  string `yaml:"registry,omitempty"`
		Namespace string `yaml:"namespace,omitempty"`
		Routing   string `yaml:"routing,omitempty"`
		Gateway   string `yaml:"gateway,omitempty"`
		Traffic   string `yaml:"traffic,omitempty"`
		Images    string `yaml:"images,omitempty"`
		// As in gantry.RuntimeSpec, field for field: one converts to the other.
		StorageClass string `yaml:"storage_class,omitempty"`
		PersistSize  string `yaml:"persist_size,omitempty"`
		CopyImage    string `yaml:"copy_image,omitempty"`
	}
	yApprovals struct {
		Required int      `yaml:"required"`
		Roles    []string `yaml:"roles,omitempty"`
	}
)

func toYAML(m *gantry.Manifest) yManifest {
	y := yManifest{
		App:          m.App,
		Version:      yVersion{Scheme: m.Version.Scheme},
		Services:     map[string]yService{},
		Environments: map[string]yEnvironment{},
	}
	for name, s := range m.Services {
		ys := yService{Run: s.Run, HTTP: s.HTTP, Instances: s.Instances, Order: s.Order,
			Health: yHealth{Path: s.Health.Path, Interval: formatDuration(s.Health.Interval),
				Timeout: formatDuration(s.Health.Timeout), HealthyAfter: s.Health.HealthyAfter},
			Stop: yStop{Signal: s.Stop.Signal, Timeout: formatDuration(s.Stop.Timeout)},
		}
		if s.Health.StatusMin != 0 {
			ys.Health.Status = fmt.Sprintf("%d-%d", s.Health.StatusMin, s.Health.StatusMax)
		}
		if !s.HTTP {
			ys.ReadyDelay = formatDuration(s.Ready)
		}
		if s.Build != nil {
			ys.Build = &yBuild{Command: s.Build.Command, Artifacts: s.Build.Artifacts}
		}
		if s.Docker != nil {
			ys.Docker = &yDocker{Dockerfile: s.Docker.Dockerfile, Context: s.Docker.Context, Target: s.Docker.Target, Args: s.Docker.Args}
		}
		ys.VersionFile, ys.Requires, ys.Persist = s.VersionFile, s.Requires, s.Persist
		if s.Route != nil {
			ys.Route = &yRoute{Hosts: s.Route.Hosts, Path: s.Route.Path}
		}
		y.Services[name] = ys
	}
	for _, c := range m.Verify {
		v := yVerify{Command: c.Command}
		if c.HTTP != nil {
			v.HTTP = &yHTTPCheck{Path: c.HTTP.Path, Status: c.HTTP.Status, Contains: c.HTTP.Contains}
		}
		y.Verify = append(y.Verify, v)
	}
	if db := m.Database; db != nil {
		y.Database = &yDatabase{Engine: db.Engine, MigrateOnStart: db.MigrateOnStart}
		if db.Migrations.Engine != "" {
			y.Database.Migrations = &yMigrations{Engine: db.Migrations.Engine, Dir: db.Migrations.Dir, Run: db.Migrations.Run, Compatible: db.Migrations.Compatible}
		}
	}
	if len(m.Hooks) > 0 {
		y.Hooks = map[string][]yHook{}
		for phase, hs := range m.Hooks {
			for _, h := range hs {
				yh := yHook{Command: h.Command}
				if h.Webhook != nil {
					yh.Webhook = &yWebhook{URL: h.Webhook.URL, Method: h.Webhook.Method}
				}
				y.Hooks[phase] = append(y.Hooks[phase], yh)
			}
		}
	}
	for _, t := range m.Notify {
		y.Notify = append(y.Notify, yNotify{Slack: t.Slack, Webhook: t.Webhook, Environments: t.Environments})
	}
	for _, t := range m.Triggers {
		y.Triggers = append(y.Triggers, yTrigger{On: t.On, Branch: t.Branch, Do: t.Do, Env: t.Env})
	}
	if p := m.Previews; p != nil {
		y.Previews = &yPreviews{From: p.From, Host: p.Host, TTL: formatDuration(p.TTL), Max: p.Max, Data: p.Data, PostCopy: p.PostCopy}
	}
	for name, e := range m.Environments {
		ye := yEnvironment{Hosts: e.Hosts, Strategy: e.Strategy, KeepWarm: formatDuration(e.KeepWarm),
			Runtime: yRuntime(e.Runtime),
			Vars:    e.Vars, Secrets: e.Secrets, PromoteFrom: e.PromoteFrom}
		if e.Approvals != nil {
			ye.Approvals = &yApprovals{Required: e.Approvals.Required, Roles: e.Approvals.Roles}
		}
		if e.HotfixApprovals != nil {
			ye.Hotfix = &yApprovals{Required: e.HotfixApprovals.Required, Roles: e.HotfixApprovals.Roles}
		}
		for _, w := range e.Freeze {
			ye.Freeze = append(ye.Freeze, yFreeze{From: w.From.Format(time.RFC3339), To: w.To.Format(time.RFC3339), Reason: w.Reason})
		}
		ye.ViaClone = e.MigrationsViaClone
		if w := e.Watch; w != nil {
			ye.Watch = &yWatch{Window: formatDuration(w.Window), MaxErrorRate: w.MaxErrorRate,
				MaxLatencyRatio: w.MaxLatencyRatio, MinRequests: w.MinRequests}
		}
		if c := e.Canary; c != nil {
			yc := &yCanary{Sticky: formatDuration(c.Sticky), MinRequests: c.MinRequests, MaxExtensions: c.MaxExtensions,
				OnInconclusive: c.OnInconclusive, LatencyMs: c.LatencyMs, LatencyPercent: c.LatencyPercent, ErrorRate: c.ErrorRate}
			if m := c.Match; m != nil {
				yc.Match = &yCanaryMatch{Header: m.Header, Cookie: m.Cookie, Value: m.Value}
			}
			for _, st := range c.Steps {
				ys := yCanaryStep{Weight: st.Weight, Requests: st.Requests}
				if st.Duration > 0 {
					ys.Duration = formatDuration(st.Duration)
				}
				yc.Steps = append(yc.Steps, ys)
			}
			ye.Canary = yc
		}
		y.Environments[name] = ye
	}
	return y
}

// formatDuration writes a duration as a person would: 10m rather than 10m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
