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
	// PostCopy is SQL run in a copied database before the preview starts
	// (anonymise it: e-mail addresses, names, tokens).
	PostCopy string `json:"post_copy,omitempty"`
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

// Forges whose webhooks the server accepts, and the poller's pseudo-forge.
const (
	ForgeGitHub = "github"
	ForgeGitLab = "gitlab"
	ForgeGitea  = "gitea" // Gitea and Forgejo: one payload shape, either header set
	ForgePoll   = "poll"  // the server polls the repository itself
)

// Forges lists the forges a hook may be for.
var Forges = []string{ForgeGitHub, ForgeGitLab, ForgeGitea, ForgePoll}

// ForgeHook is a forge's webhook (or the poller) of an app as the server
// knows it. It runs as its own token, Token, whose role and environments
// bound what its events may do; its webhook secret is stored sealed and
// never shown again after it is made.
type ForgeHook struct {
	App   string `json:"app"`
	Forge string `json:"forge"`
	Token string `json:"token"`
	// APIURL is the forge API that statuses are posted to ("" for the
	// forge's default); StatusToken says whether a token to post them is set.
	APIURL      string        `json:"api_url,omitempty"`
	StatusToken bool          `json:"status_token,omitempty"`
	Poll        time.Duration `json:"poll,omitempty"`
	CreatedAt   time.Time     `json:"created_at"`
	// URL is the payload URL a forge posts to, where the server knows its
	// own address (not for the poller).
	URL string `json:"url,omitempty"`
	// Recent are its latest deliveries, newest first, as the server that
	// lists them received them since it started.
	Recent []HookDelivery `json:"recent,omitempty"`
}

// HookDelivery is one delivery a hook received: what it was, what the
// server answered (the action, or why it refused it), and the last word
// of the work it started (pending, success or failure, and what it said).
// It holds no secret: neither the body nor its signature.
type HookDelivery struct {
	At       time.Time `json:"at"`
	Delivery string    `json:"delivery,omitempty"`
	Event    string    `json:"event,omitempty"`
	Branch   string    `json:"branch,omitempty"`
	Commit   string    `json:"commit,omitempty"`
	Answer   string    `json:"answer"`
	Refused  bool      `json:"refused,omitempty"`
	Outcome  string    `json:"outcome,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// AddHookRequest makes a hook: its token's grant (Role, Envs), where
// statuses go, and for the poller how often it looks.
type AddHookRequest struct {
	App      string        `json:"app"`
	Forge    string        `json:"forge"`
	Role     string        `json:"role"`
	Envs     []string      `json:"envs,omitempty"`
	APIURL   string        `json:"api_url,omitempty"`
	APIToken string        `json:"api_token,omitempty"`
	Poll     time.Duration `json:"poll,omitempty"`
	Actor    string        `json:"actor"`
}

// AddedHook is a new hook with what to paste into the forge, shown once.
type AddedHook struct {
	ForgeHook
	Path   string `json:"path,omitempty"`   // the webhook's path on the server: /v1/hooks/<app>/<forge>
	Secret string `json:"secret,omitempty"` // the webhook secret (GitHub, Gitea: the HMAC key; GitLab: the token)
}

// DeliveryResult says what a delivery (or a polled change) was taken as
// and what the server does about it (in the background).
type DeliveryResult struct {
	Forge    string `json:"forge"`
	Delivery string `json:"delivery,omitempty"`
	Event    string `json:"event"`
	Branch   string `json:"branch,omitempty"`
	Commit   string `json:"commit,omitempty"`
	// Actor is the hook's token that the work runs as.
	Actor  string `json:"actor,omitempty"`
	Action string `json:"action"`
}

// TriggerService keeps an app's hooks and acts on their deliveries
// (package trigger).
type TriggerService interface {
	AddHook(ctx context.Context, req AddHookRequest) (*AddedHook, error)
	ListHooks(ctx context.Context, app string) ([]*ForgeHook, error)
	RemoveHook(ctx context.Context, app, forge string) error
	// Deliver verifies a delivery's signature, refuses a replay, and
	// starts what the app's triggers say.
	Deliver(ctx context.Context, app, forge string, header map[string][]string, body []byte) (*DeliveryResult, error)
}
