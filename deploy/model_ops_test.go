package deploy_test

import (
	"encoding/json"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// model is one random sequence: its app and policy, and what the model
// knows (histories, approvals, manual locks) to judge each step.
type model struct {
	h      *Harness
	rnd    *rand.Rand
	app    App
	rels   []*gantry.Release
	migr   map[string][]string // release ID → its migrations
	freeze map[string]bool     // env → declares the freeze window
	window [2]time.Time
	hist   map[string]map[string]bool // env → releases it served
	apprvd map[string]bool            // releases approved for prod
	locked map[string]bool            // env → the model's manual lock
	log    []string
	steps  int
}

var modelEnvs = []string{"test", "prod", "c1", "told"}

func newModel(h *Harness, seed int64, name string) *model {
	m := &model{h: h, rnd: rand.New(rand.NewSource(seed)), migr: map[string][]string{}, freeze: map[string]bool{},
		hist: map[string]map[string]bool{}, apprvd: map[string]bool{}, locked: map[string]bool{}}
	r := m.rnd
	now := h.Clock.Now()
	m.window = [2]time.Time{now.Add(time.Hour), now.Add(3 * time.Hour)}
	test := Env{Name: "test", Strategy: []string{"bluegreen", "restart", "maintenance"}[r.Intn(3)]}
	prod := Env{Name: "prod"}
	if r.Intn(10) < 7 {
		prod.PromoteFrom = "test"
	}
	if r.Intn(10) < 4 {
		prod.Approvals = 1
	}
	prod.ViaClone = r.Intn(10) < 3
	for _, e := range []*Env{&test, &prod} {
		if r.Intn(10) < 3 {
			e.Freeze = [][2]time.Time{m.window}
			m.freeze[e.Name] = true
		}
		if r.Intn(10) < 2 {
			e.KeepWarm = "0s"
		}
	}
	m.app = App{Name: name, Services: []Svc{{Name: "web", Order: 1}}, Database: r.Intn(2) == 0, Envs: []Env{test, prod}}
	if r.Intn(10) < 3 {
		m.app.Services = append(m.app.Services, Svc{Name: "jobs", Worker: true, Order: 0})
	}
	migrations := [][]string{{"01"}, {"01"}, {"01", "02"}, {"01", "02"}, {"01", "02", "03"}}
	for i, v := range []string{"1.0.0", "1.0.1", "1.1.0", "1.1.1", "2.0.0"} {
		rel := h.MustRelease(h.TB, m.app, Rel{Version: v, Migrations: migrations[i]})
		m.rels = append(m.rels, rel)
		m.migr[rel.ID] = migrations[i]
	}
	m.logf("policy: db %t, test %s freeze %t, prod promote_from %q approvals %d via_clone %t freeze %t, workers %d",
		m.app.Database, test.Strategy, m.freeze["test"], prod.PromoteFrom, prod.Approvals, prod.ViaClone, m.freeze["prod"], len(m.app.Services)-1)
	return m
}

func (m *model) logf(format string, args ...any) { m.log = append(m.log, fmt.Sprintf(format, args...)) }

// envState is what the model reads of an environment before and after a step.
type envState struct {
	exists     bool
	active     string // release ID
	version    string
	verified   bool
	clonedFrom string
}

func (m *model) read() map[string]envState {
	out := map[string]envState{}
	envs, err := m.h.Store.ListEnvironments(m.h.Ctx, m.app.Name)
	if err != nil {
		m.h.TB.Error(err)
	}
	for _, e := range envs {
		n := e.Name
		st := envState{exists: true, clonedFrom: e.ClonedFrom}
		if a := e.ActiveSlot(); a != nil {
			st.active, st.version, st.verified = a.ReleaseID, a.Version, a.Verified
		}
		out[n] = st
	}
	return out
}

// op is one step: what was asked, and the envs whose release it may change.
type op struct {
	desc       string
	kind       string // deploy, promote, rollback, clone, rename, other
	env        string
	breakGlass string
}

func (m *model) run(steps int) error {
	for i := 0; i < steps; i++ {
		pre := m.read()
		o, err := m.step()
		m.steps++
		m.logf("%2d. %s → %s", i+1, o.desc, errText(err))
		post := m.read()
		if verr := m.check(o, pre, post); verr != nil {
			return fmt.Errorf("after step %d (%s): %w", i+1, o.desc, verr)
		}
		// Histories: what each environment served; a rename moves them.
		if o.kind == "rename" && err == nil {
			m.hist["told"], m.hist["test"], m.hist["c1"] = m.hist["test"], m.hist["c1"], nil
		}
		for n, st := range post {
			if st.active != "" {
				if m.hist[n] == nil {
					m.hist[n] = map[string]bool{}
				}
				m.hist[n][st.active] = true
			}
		}
	}
	return nil
}

// cleanup stops the sequence's instances and removes its routes, so that
// the next sequences on this harness do not pay for them.
func (m *model) cleanup() {
	h, app := m.h, m.app.Name
	for _, r := range h.Driver.Running() {
		if r.App == app {
			_ = h.Driver.Stop(h.Ctx, r.Instance, gantry.StopSpec{})
		}
	}
	sts, _ := h.Router.Status(h.Ctx)
	for _, st := range sts {
		if strings.HasPrefix(st.Route.Name, app+"/") {
			_ = h.Router.RemoveRoute(h.Ctx, st.Route.Name)
		}
	}
	envs, _ := h.Store.ListEnvironments(h.Ctx, app)
	for _, e := range envs {
		_ = h.Store.DeleteEnvironment(h.Ctx, app, e.Name)
	}
}

func errText(err error) string {
	if err == nil {
		return "ok"
	}
	msg := gantry.ErrorMessage(err)
	if len(msg) > 140 {
		msg = msg[:140] + "…"
	}
	return gantry.ErrorCode(err) + ": " + msg
}

func (m *model) pick(xs ...string) string { return xs[m.rnd.Intn(len(xs))] }

func (m *model) step() (op, error) {
	h, app, r := m.h, m.app.Name, m.rnd
	rel := m.rels[r.Intn(len(m.rels))]
	bg := ""
	if r.Intn(4) == 0 {
		bg = "incident"
	}
	switch n := r.Intn(110); {
	case n < 30:
		env := m.pick("test", "test", "prod", "c1")
		_, err := h.O.Deploy(h.Ctx, gantry.DeployRequest{App: app, Env: env, Release: rel.ID, Actor: "dev", BreakGlass: bg}, nil)
		return op{fmt.Sprintf("deploy %s to %s (break-glass %q)", rel.Version, env, bg), "deploy", env, bg}, err
	case n < 42:
		_, err := h.O.Promote(h.Ctx, gantry.PromoteRequest{App: app, From: "test", To: "prod", Actor: "dev", BreakGlass: bg}, nil)
		return op{fmt.Sprintf("promote test → prod (break-glass %q)", bg), "promote", "prod", bg}, err
	case n < 56:
		env := m.pick("test", "prod")
		req := gantry.RollbackRequest{App: app, Env: env, Actor: "dev", BreakGlass: bg}
		desc := "rollback " + env
		switch r.Intn(3) {
		case 1:
			req.To, desc = rel.ID, desc+" --to "+rel.Version
		case 2:
			req, desc = setJSON(req, "force", true), desc+" --force"
		}
		_, err := h.O.Rollback(h.Ctx, req, nil)
		return op{fmt.Sprintf("%s (break-glass %q)", desc, bg), "rollback", env, bg}, err
	case n < 62:
		env, force := m.pick("test", "prod"), r.Intn(2) == 0
		_, err := h.O.Contract(h.Ctx, app, env, force)
		return op{fmt.Sprintf("db contract %s (force %t)", env, force), "other", env, ""}, err
	case n < 68:
		src := m.pick("test", "prod")
		req := setJSON(gantry.CloneRequest{App: app, Src: src, Dst: "c1", WithData: m.app.Database && r.Intn(2) == 0, Actor: "dev"}, "break_glass", bg)
		_, err := h.O.Clone(h.Ctx, req, nil)
		return op{fmt.Sprintf("clone %s → c1 (data %t, break-glass %q)", src, req.WithData, bg), "clone", src, bg}, err
	case n < 73:
		req := setJSON(gantry.RenameRequest{App: app, Old: "c1", New: "test", DisplaceTo: "told", Actor: "dev"}, "break_glass", bg)
		_, err := h.O.Rename(h.Ctx, req, nil)
		return op{fmt.Sprintf("rename c1 → test, test → told (break-glass %q)", bg), "rename", "test", bg}, err
	case n < 81:
		_, err := h.O.Approve(h.Ctx, gantry.ApproveRequest{App: app, Env: "prod", Release: rel.ID, Actor: "qa"})
		if err == nil {
			m.apprvd[rel.ID] = true
		}
		return op{"approve " + rel.Version + " for prod", "other", "", ""}, err
	case n < 87:
		env := m.pick("test", "prod")
		if m.locked[env] {
			err := h.Store.ReleaseLock(h.Ctx, app, env, "alice", false)
			m.locked[env] = err != nil
			return op{"unlock " + env, "other", "", ""}, err
		}
		err := h.Store.AcquireLock(h.Ctx, &gantry.Lock{App: app, Env: env, Holder: "alice", Operation: "manual", Since: h.Clock.Now()})
		m.locked[env] = err == nil
		return op{"lock " + env, "other", "", ""}, err
	case n < 94:
		d := []time.Duration{10 * time.Minute, 2 * time.Hour}[r.Intn(2)]
		h.Clock.Advance(d)
		return op{fmt.Sprintf("clock +%s (frozen: %t)", d, m.frozen("test") || m.frozen("prod")), "other", "", ""}, nil
	case n < 98:
		return op{"reap standby slots", "other", "", ""}, h.O.ReapStandby(h.Ctx)
	case n < 104:
		env := m.pick("test", "prod")
		at := [][2]string{{"start-group", gantry.StepStarted}, {"switch", gantry.StepStarted}, {"switch", gantry.StepDone}, {"db-expand", gantry.StepDone}}[r.Intn(4)]
		reached := m.crash(at[0], at[1], func() {
			h.O.Deploy(h.Ctx, gantry.DeployRequest{App: app, Env: env, Release: rel.ID, Actor: "dev", BreakGlass: bg}, nil)
		})
		desc := fmt.Sprintf("deploy %s to %s (break-glass %q), the server crashing at %s %s (reached: %t), then a restart", rel.Version, env, bg, at[0], at[1], reached)
		h.O = h.NewOrchestrator()
		return op{desc, "deploy", env, bg}, h.O.Recover(h.Ctx)
	default:
		env := m.pick("test", "prod")
		if d, _ := m.pausedOn(env); d != nil {
			abort := r.Intn(3) == 0
			_, err := h.O.Continue(h.Ctx, gantry.ContinueRequest{App: app, Env: env, Actor: "dev", Abort: abort}, nil)
			return op{fmt.Sprintf("continue %s (abort %t)", env, abort), "deploy", env, ""}, err
		}
		after := 1
		_, err := h.O.DeployOrdered(h.Ctx, gantry.DeployRequest{App: app, Env: env, Release: rel.ID, Actor: "dev", BreakGlass: bg}, &after, "", nil)
		return op{fmt.Sprintf("deploy %s to %s --pause-after 1 (break-glass %q)", rel.Version, env, bg), "deploy", env, bg}, err
	}
}

// crash runs fn in a goroutine that stops for good when the journal step
// reaches state: the server "dies" there. It returns once that happened,
// or fn returned without reaching it.
func (m *model) crash(step, state string, fn func()) bool {
	reached, done := make(chan struct{}), make(chan struct{})
	var once sync.Once
	m.h.SetOnStep(func(d *gantry.Deployment, s gantry.Step) {
		if s.Name == step && s.State == state {
			once.Do(func() { close(reached) })
			select {} // the process is gone
		}
	})
	defer m.h.SetOnStep(nil)
	go func() {
		fn()
		close(done)
	}()
	select {
	case <-reached:
		return true
	case <-done:
		return false
	}
}

// pausedOn returns the paused deployment of env, if any.
func (m *model) pausedOn(env string) (*gantry.Deployment, error) {
	ds, err := m.h.Store.ListDeployments(m.h.Ctx, gantry.DeploymentFilter{App: m.app.Name, Env: env, State: gantry.DeploymentPaused, Limit: 1})
	if err != nil || len(ds) == 0 {
		return nil, err
	}
	return ds[0], nil
}

// setJSON sets a field by its JSON name, and drops it silently when the
// struct does not have it yet (see newapi_test.go).
func setJSON[T any](v T, key string, val any) T {
	if val == "" {
		return v
	}
	b, _ := json.Marshal(v)
	mm := map[string]any{}
	_ = json.Unmarshal(b, &mm)
	mm[key] = val
	b, _ = json.Marshal(mm)
	var out T
	_ = json.Unmarshal(b, &out)
	return out
}

func (m *model) frozen(env string) bool {
	now := m.h.Clock.Now()
	return m.freeze[env] && !now.Before(m.window[0]) && now.Before(m.window[1])
}

// forbidden says why the contract's gates forbid env to take release rel
// by this step ("" when they allow it).
func (m *model) forbidden(o op, env, rel string, pre map[string]envState) string {
	if m.hist[env][rel] && o.kind != "clone" && o.kind != "rename" && !m.frozen(env) {
		return "" // served before: a rollback or a redeploy
	}
	frozenEnv := env
	if o.kind == "clone" {
		frozenEnv = o.env // the source
	}
	if m.frozen(frozenEnv) && o.breakGlass == "" {
		return "freeze"
	}
	if env != "prod" || m.hist[env][rel] {
		return ""
	}
	p := m.app.Envs[1]
	if p.PromoteFrom == "test" && !(pre["test"].active == rel && pre["test"].verified) {
		return "promote_from"
	}
	if p.Approvals > 0 && !m.apprvd[rel] {
		return "approvals"
	}
	// migrations_via_clone binds deploys and promotions; whether a
	// rollback --to across a minor version is a "migration" the contract
	// leaves open, so the model does not judge it.
	if p.ViaClone && (o.kind == "deploy" || o.kind == "promote") && pre["prod"].active != "" && majorMinor(pre["prod"].version) != majorMinor(m.version(rel)) {
		fromClone := false
		for _, st := range pre {
			fromClone = fromClone || (st.clonedFrom == "prod" && st.active == rel)
		}
		if !fromClone {
			return "migrations_via_clone"
		}
	}
	return ""
}

func majorMinor(v string) string {
	parts := strings.SplitN(strings.TrimPrefix(v, "v"), ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

func (m *model) version(id string) string {
	for _, r := range m.rels {
		if r.ID == id {
			return r.Version
		}
	}
	return ""
}

// check verifies the invariants after a step.
func (m *model) check(o op, pre, post map[string]envState) error {
	h, app := m.h, m.app.Name
	if *modelContract {
		for _, n := range modelEnvs {
			b, a := pre[n], post[n]
			if a.active == "" || a.active == b.active {
				continue
			}
			target := o.env
			switch o.kind {
			case "clone":
				target = "c1"
			case "rename":
				if n == "told" {
					continue // test's release, moved
				}
			}
			if o.kind == "other" || n != target {
				return fmt.Errorf("(a) %s changed from %q to %s on an operation that does not deploy to it", n, b.version, a.version)
			}
			if why := m.forbidden(o, n, a.active, pre); why != "" {
				return fmt.Errorf("(a) %s took %s (was %q) though gate %s forbids it", n, a.version, b.version, why)
			}
		}
	}
	envs, err := h.Store.ListEnvironments(h.Ctx, app)
	if err != nil {
		return err
	}
	listed := map[string]bool{}
	names := map[string]bool{}
	for _, e := range envs {
		names[gantry.RouteName(app, e.Name)] = true
		for _, s := range e.Slots {
			for _, inst := range s.Instances {
				listed[inst.Handle] = true
			}
		}
		a := e.ActiveSlot()
		if a == nil {
			continue
		}
		want := strings.Join(h.webTargets(h.TB, app, a), ",")
		if got := strings.Join(h.Serving(h.TB, app, e.Name), ","); got != want {
			return fmt.Errorf("(b) %s: the router serves [%s], the record's active slot %s (%s) has [%s]", e.Name, got, a.Name, a.Version, want)
		}
		if *modelContract && m.app.Database {
			if err := h.DB.Compatible(h.DBURL(app, e.Name), m.migr[a.ReleaseID]); err != nil {
				return fmt.Errorf("(d) %s serves %s, incompatible with its database: %v", e.Name, a.Version, err)
			}
		}
		paused, _ := m.pausedOn(e.Name)
		if l, err := h.Store.FindLock(h.Ctx, app, e.Name); err == nil && !(l.Holder == "alice" && m.locked[e.Name]) && paused == nil {
			return fmt.Errorf("(c) %s is still locked by %s (%s)", e.Name, l.Holder, l.Operation)
		}
	}
	sts, _ := h.Router.Status(h.Ctx)
	for _, st := range sts {
		if !strings.HasPrefix(st.Route.Name, app+"/") {
			continue
		}
		if !names[st.Route.Name] && len(st.Active) > 0 {
			return fmt.Errorf("(b) route %s serves %v but no environment has that name", st.Route.Name, addrsOf(st.Active))
		}
		if st.Paused {
			return fmt.Errorf("(b) route %s still holds requests (writes only: %t)", st.Route.Name, st.WritesOnly)
		}
	}
	var extra, missing []string
	running := map[string]bool{}
	for _, r := range h.Driver.Running() {
		if r.App != app {
			continue
		}
		running[r.Handle] = true
		if !listed[r.Handle] {
			extra = append(extra, fmt.Sprintf("%s %s-%d of %s on %s/%s", r.Handle, r.Service, r.Index, m.version(r.ReleaseID), r.Env, r.Slot))
		}
	}
	for hd := range listed {
		if !running[hd] {
			missing = append(missing, hd)
		}
	}
	if len(extra)+len(missing) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("(b) instances: running but in no record %v; in a record but not running %v", extra, missing)
	}
	for _, d := range h.Running(h.TB, app) {
		if d.State != gantry.DeploymentPaused {
			return fmt.Errorf("(c) deployment #%d (%s) is still %s", d.ID, d.Kind, d.State)
		}
	}
	return nil
}
