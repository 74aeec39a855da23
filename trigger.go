package gantry

import (
	"context"
	"path"
	"strconv"
	"strings"
	"time"
)

// Trigger events, as a manifest's triggers name them.
const (
	TriggerPush         = "push"          // a branch moved (or was deleted)
	TriggerMergeRequest = "merge_request" // a merge (pull) request was opened, updated, merged or closed
)

// Trigger actions: what an event does.
const (
	TriggerBuild   = "build"   // build a release of the pushed commit
	TriggerDeploy  = "deploy"  // build it and deploy it to Env
	TriggerPreview = "preview" // build it and serve it in a preview environment of its own
	TriggerNothing = "nothing" // nothing: stops the search for a match
)

// Trigger says what a push to a branch, or a merge request, does. The
// manifest's triggers are matched in order; the first that matches wins.
type Trigger struct {
	On string `json:"on"`
	// Branch is a glob (path.Match: "releases/*") on the pushed branch, or
	// on a merge request's target branch; empty matches every branch.
	Branch string `json:"branch,omitempty"`
	Do     string `json:"do"`
	Env    string `json:"env,omitempty"`
}

// Matches reports whether t applies to event on branch.
func (t *Trigger) Matches(on, branch string) bool {
	if t.On != on {
		return false
	}
	if t.Branch == "" {
		return true
	}
	ok, err := path.Match(t.Branch, branch)
	return err == nil && ok
}

// TriggerFor returns the first trigger of m that matches, or nil.
func (m *Manifest) TriggerFor(on, branch string) *Trigger {
	for i := range m.Triggers {
		if m.Triggers[i].Matches(on, branch) {
			return &m.Triggers[i]
		}
	}
	return nil
}

// Preview data modes.
const (
	PreviewDataNone = "none" // an empty database of its own
	PreviewDataCopy = "copy" // a copy of the template environment's database
)

// PreviewSpec says how a branch's or merge request's preview environment
// is made: cloned from From, served on Host (with {branch}, {name} and
// {app} filled in), deleted TTL after its last update, at most Max at once.
type PreviewSpec struct {
	From string        `json:"from"`
	Host string        `json:"host"`
	TTL  time.Duration `json:"ttl"`
	Max  int           `json:"max"`
	Data string        `json:"data"`
}

// HostFor returns the preview host of the environment name made for branch.
func (p *PreviewSpec) HostFor(app, name, branch string) string {
	r := strings.NewReplacer("{branch}", BranchSlug(branch), "{name}", name, "{app}", app)
	return r.Replace(p.Host)
}

// Preview is what a preview environment records of where it comes from,
// so that the event that ends it (merge, close, branch deleted) or its TTL
// finds it.
type Preview struct {
	Forge        string    `json:"forge"`
	Repo         string    `json:"repo,omitempty"` // the forge's name of the repository (owner/name, or a project id)
	Branch       string    `json:"branch"`
	MergeRequest int       `json:"merge_request,omitempty"`
	Commit       string    `json:"commit"`
	ExpiresAt    time.Time `json:"expires_at"`
	// Database is set when Gantry created the preview's database, which it
	// drops when the preview goes.
	Database bool `json:"database,omitempty"`
}

// PreviewName is the environment name of a merge request's preview
// (mr-12) or of a branch's (br-feature-login).
func PreviewName(mergeRequest int, branch string) string {
	if mergeRequest > 0 {
		return "mr-" + strconv.Itoa(mergeRequest)
	}
	s := "br-" + BranchSlug(branch)
	if len(s) > MaxNameLength {
		s = strings.TrimRight(s[:MaxNameLength], "-")
	}
	return s
}

// BranchSlug is a branch name as a DNS label: lowercase letters, digits
// and dashes ("feature/Login_form" → "feature-login-form").
func BranchSlug(branch string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(branch) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimRight(b.String(), "-")
	if len(s) > MaxNameLength-3 {
		s = strings.TrimRight(s[:MaxNameLength-3], "-")
	}
	if s == "" {
		s = "branch"
	}
	return s
}

// DeliveryStore remembers the webhook deliveries a server has acted on,
// so that a replayed one is refused. Implementations: sqlite, postgres.
type DeliveryStore interface {
	// RememberDelivery records delivery id of source (a forge and app), or
	// returns ECONFLICT when it was recorded already. Deliveries recorded
	// before forgetBefore are forgotten first: the caller refuses those
	// older than that by their timestamp, or accepts the bound.
	RememberDelivery(ctx context.Context, source, id string, at, forgetBefore time.Time) error
}
