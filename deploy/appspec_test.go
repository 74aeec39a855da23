package deploy_test

// Test manifests: an App writes the gantry.yml of a test release.

import (
	"fmt"
	"strings"
	"time"
)

// Svc is a service of a test manifest.
type Svc struct {
	Name      string
	Worker    bool
	Instances int
	Order     int
	// Route is the service's route: YAML such as "{path: /api}". The
	// second and later http services of an app without one are routed at
	// /<name>, since two services may not take the same requests.
	Route string
	// Requires is the service's requires mapping, inline YAML.
	Requires string
	// Persist is the service's persist list, inline YAML ("[uploads]").
	Persist string
}

// Env is an environment of a test manifest.
type Env struct {
	Name        string
	PromoteFrom string
	Strategy    string
	KeepWarm    string // "0s", "10m"; "" is the default
	Approvals   int
	Hotfix      int // hotfix_approvals.required; 0: none
	ViaClone    bool
	Runtime     string // "" is process
	Freeze      [][2]time.Time
	Watch       string // the watch mapping, inline YAML ({window: 1m, …})
	Secrets     []string
	Vars        string // the vars mapping, inline YAML ({BASE_URL: …})
	Canary      string // the canary mapping, inline YAML ({steps: […]})
}

// App is a test manifest.
type App struct {
	Name     string
	Services []Svc
	Database bool
	Verify   bool
	Envs     []Env
	// Extra is top-level YAML added as is (hooks:, notify:, verify: …).
	Extra string
}

// Simple is a one-service app with test and prod (prod promoted from test).
func Simple(name string) App {
	return App{Name: name, Services: []Svc{{Name: "web"}}, Envs: []Env{{Name: "test"}, {Name: "prod", PromoteFrom: "test"}}}
}

// YAML writes the app's gantry.yml.
func (a App) YAML() string {
	var b strings.Builder
	fmt.Fprintf(&b, "app: %s\nservices:\n", a.Name)
	web := 0 // http services written so far
	for _, s := range a.Services {
		fmt.Fprintf(&b, "  %s:\n    build: {command: \"true\", artifacts: [bin]}\n    run: bin/%s\n", s.Name, s.Name)
		if s.Worker {
			b.WriteString("    http: false\n    ready_delay: 0s\n")
		} else {
			b.WriteString("    health: {path: /up, interval: 10ms, timeout: 1s}\n")
			route := s.Route
			if route == "" && web > 0 {
				route = "{path: /" + s.Name + "}"
			}
			if route != "" {
				fmt.Fprintf(&b, "    route: %s\n", route)
			}
			web++
		}
		if s.Instances > 0 {
			fmt.Fprintf(&b, "    instances: %d\n", s.Instances)
		}
		if s.Persist != "" {
			fmt.Fprintf(&b, "    persist: %s\n", s.Persist)
		}
		if s.Requires != "" {
			fmt.Fprintf(&b, "    requires: %s\n", s.Requires)
		}
		fmt.Fprintf(&b, "    order: %d\n", s.Order)
	}
	if a.Verify {
		b.WriteString("verify:\n  - http: {path: /, status: 200, contains: release}\n")
	}
	if a.Database {
		b.WriteString("database:\n  engine: postgres\n  migrations: {engine: pgroll, dir: db/migrations}\n")
	}
	b.WriteString(a.Extra)
	b.WriteString("environments:\n")
	for _, e := range a.Envs {
		fmt.Fprintf(&b, "  %s:\n    hosts: [%s.%s.localhost]\n", e.Name, e.Name, a.Name)
		if e.Runtime != "" {
			fmt.Fprintf(&b, "    runtime: {driver: %s}\n", e.Runtime)
		}
		if e.Strategy != "" {
			fmt.Fprintf(&b, "    strategy: %s\n", e.Strategy)
		}
		if e.KeepWarm != "" {
			fmt.Fprintf(&b, "    keep_warm: %s\n", e.KeepWarm)
		}
		if e.Vars != "" {
			fmt.Fprintf(&b, "    vars: %s\n", e.Vars)
		}
		if e.PromoteFrom != "" {
			fmt.Fprintf(&b, "    promote_from: %s\n", e.PromoteFrom)
		}
		if e.Approvals > 0 {
			fmt.Fprintf(&b, "    approvals: {required: %d}\n", e.Approvals)
		}
		if e.Hotfix > 0 {
			fmt.Fprintf(&b, "    hotfix_approvals: {required: %d}\n", e.Hotfix)
		}
		if e.ViaClone {
			b.WriteString("    migrations_via_clone: true\n")
		}
		if len(e.Freeze) > 0 {
			b.WriteString("    freeze:\n")
			for _, w := range e.Freeze {
				fmt.Fprintf(&b, "      - {from: %q, to: %q, reason: release week}\n", w[0].Format(time.RFC3339), w[1].Format(time.RFC3339))
			}
		}
		if e.Watch != "" {
			fmt.Fprintf(&b, "    watch: %s\n", e.Watch)
		}
		if len(e.Secrets) > 0 {
			fmt.Fprintf(&b, "    secrets: [%s]\n", strings.Join(e.Secrets, ", "))
		}
		if e.Canary != "" {
			fmt.Fprintf(&b, "    canary: %s\n", e.Canary)
		}
	}
	return b.String()
}
