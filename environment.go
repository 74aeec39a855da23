package gantry

import (
	"fmt"
	"strings"
	"time"
)

// Slot names.
const (
	SlotBlue  = "blue"
	SlotGreen = "green"
)

// OtherSlot returns the slot that is not s.
func OtherSlot(s string) string {
	if s == SlotBlue {
		return SlotGreen
	}
	return SlotBlue
}

// Slot states.
const (
	SlotEmpty    = "empty"    // nothing runs
	SlotStarting = "starting" // instances are being started for a candidate
	SlotActive   = "active"   // takes traffic
	SlotStandby  = "standby"  // the previous release, kept warm for rollback
	SlotStopped  = "stopped"  // ran a release, now stopped
)

// Environment is a runtime target of an app and its current state.
type Environment struct {
	App  string          `json:"app"`
	Name string          `json:"name"`
	Spec EnvironmentSpec `json:"spec"`
	// Active is the slot that takes traffic ("" before the first deploy).
	Active string           `json:"active"`
	Slots  map[string]*Slot `json:"slots"`
	// DataID names the environment's persistent directories
	// (services.<service>.persist): given when they are first needed, kept
	// through a rename, new for a clone.
	DataID string `json:"data_id,omitempty"`
	// ClonedFrom records the environment this one was cloned from.
	ClonedFrom string `json:"cloned_from,omitempty"`
	// Preview is set on a preview environment of a branch or merge request.
	Preview *Preview `json:"preview,omitempty"`
	// DatabaseCopy is the copy of the source's database a clone --with-data
	// made for this environment; Created says Gantry created the database,
	// which env delete then drops (unless --keep-data).
	DatabaseCopy *CopyRecord `json:"database_copy,omitempty"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
}

// Slot is blue or green inside an environment, running one release.
type Slot struct {
	Name      string     `json:"name"`
	State     string     `json:"state"`
	ReleaseID string     `json:"release_id,omitempty"`
	Version   string     `json:"version,omitempty"`
	Instances []Instance `json:"instances,omitempty"`
	Since     time.Time  `json:"since,omitempty"`
	// WarmUntil is when a standby slot is stopped.
	WarmUntil time.Time `json:"warm_until,omitempty"`
	// Verified is set when the release passed health and verify on this slot.
	Verified bool `json:"verified,omitempty"`
	// Addrs are the host:port addresses of the slot's http services, by
	// service, one per instance: decided before the slot's first instance
	// starts and kept while the slot runs, so that every instance is told
	// where its siblings in the slot are (GANTRY_SERVICE_<NAME>_URL) and a
	// service restarted in place comes back where its siblings look.
	Addrs map[string][]string `json:"addrs,omitempty"`
}

// ActiveSlot returns the slot taking traffic, or nil.
func (e *Environment) ActiveSlot() *Slot {
	if e.Active == "" {
		return nil
	}
	return e.Slots[e.Active]
}

// Slot returns the named slot, creating an empty one if needed.
func (e *Environment) Slot(name string) *Slot {
	if e.Slots == nil {
		e.Slots = map[string]*Slot{}
	}
	s, ok := e.Slots[name]
	if !ok {
		s = &Slot{Name: name, State: SlotEmpty}
		e.Slots[name] = s
	}
	return s
}

// RouteName is the router's name for an environment's route.
func RouteName(app, env string) string { return app + "/" + env }

// Lock holds an environment for one operation at a time.
type Lock struct {
	App          string    `json:"app"`
	Env          string    `json:"env"`
	Holder       string    `json:"holder"`    // actor
	Operation    string    `json:"operation"` // "deploy", "manual", …
	Reason       string    `json:"reason,omitempty"`
	DeploymentID int64     `json:"deployment_id,omitempty"`
	Since        time.Time `json:"since"`
	// Expires is zero for a lock without TTL.
	Expires time.Time `json:"expires,omitempty"`
}

// HeldAt reports whether l still holds at now: it has no TTL, or its TTL
// has not passed.
func (l *Lock) HeldAt(now time.Time) bool {
	return l.Expires.IsZero() || !l.Expires.Before(now)
}

// NotLockedError is the ENOTFOUND of an environment without a lock.
func NotLockedError(app, env string) error {
	return Errorf(ENOTFOUND, "environment %q of app %q is not locked", env, app)
}

// LockedError is the ECONFLICT that names who holds l, for what, and since
// when, so that whoever is refused knows whom to ask. Every store gives it
// in this form (internal/storetest checks it); suffix is added as is.
func LockedError(l *Lock, suffix string) error {
	what := l.Operation
	if l.DeploymentID != 0 {
		what = strings.TrimSpace(fmt.Sprintf("%s #%d", what, l.DeploymentID))
	}
	msg := fmt.Sprintf("environment %q of app %q is locked by %s", l.Env, l.App, l.Holder)
	if what != "" {
		msg += " (" + what + ")"
	}
	msg += " since " + l.Since.UTC().Format(time.RFC3339)
	if !l.Expires.IsZero() {
		msg += " until " + l.Expires.UTC().Format(time.RFC3339)
	}
	if l.Reason != "" {
		msg += fmt.Sprintf(" (%q)", l.Reason)
	}
	return Errorf(ECONFLICT, "%s%s", msg, suffix)
}

// InUTC returns a copy of e with every time in UTC, so that a stored record
// reads the same whichever zone the writer's clock was in. e is left alone.
func (e *Environment) InUTC() *Environment {
	c := *e
	c.CreatedAt, c.UpdatedAt = e.CreatedAt.UTC(), e.UpdatedAt.UTC()
	if e.Preview != nil {
		p := *e.Preview
		p.ExpiresAt = p.ExpiresAt.UTC()
		c.Preview = &p
	}
	if e.DatabaseCopy != nil {
		d := *e.DatabaseCopy
		d.StartedAt = d.StartedAt.UTC()
		c.DatabaseCopy = &d
	}
	if e.Slots == nil {
		return &c
	}
	c.Slots = make(map[string]*Slot, len(e.Slots))
	for name, s := range e.Slots {
		if s == nil {
			c.Slots[name] = nil
			continue
		}
		sc := *s
		sc.Since, sc.WarmUntil = s.Since.UTC(), s.WarmUntil.UTC()
		if s.Instances != nil {
			sc.Instances = make([]Instance, len(s.Instances))
			for i, inst := range s.Instances {
				inst.StartedAt = inst.StartedAt.UTC()
				sc.Instances[i] = inst
			}
		}
		c.Slots[name] = &sc
	}
	return &c
}
