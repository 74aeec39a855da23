package gantry

import (
	"context"
	"io"
	"time"
)

// DeployRequest asks for a release to be deployed to an environment.
type DeployRequest struct {
	App     string `json:"app"`
	Env     string `json:"env"`
	Release string `json:"release"` // id or version
	// Strategy overrides the environment's strategy.
	Strategy string `json:"strategy,omitempty"`
	Actor    string `json:"actor"`
	// BreakGlass, when set, is the recorded reason to deploy through a freeze.
	BreakGlass string `json:"break_glass,omitempty"`
	// Wait queues the request behind the environment's lock instead of
	// failing at once; queued requests run in the order they arrived.
	Wait bool `json:"wait,omitempty"`
	// PauseAfter pauses the rollout once this order group is healthy; the
	// deployment keeps the lock until `gantry continue`.
	PauseAfter *int `json:"pause_after,omitempty"`
	// Only redeploys this one service; the others keep what they run.
	Only string `json:"only,omitempty"`
}

// PromoteRequest asks for the release active on From to be deployed to To.
type PromoteRequest struct {
	App        string `json:"app"`
	From       string `json:"from"`
	To         string `json:"to"`
	Actor      string `json:"actor"`
	BreakGlass string `json:"break_glass,omitempty"`
	Wait       bool   `json:"wait,omitempty"`
	// Strategy overrides To's strategy (bluegreen, restart, maintenance),
	// as DeployRequest.Strategy does.
	Strategy string `json:"strategy,omitempty"`
	// PauseAfter pauses the rollout on To once this order group is healthy.
	PauseAfter *int `json:"pause_after,omitempty"`
}

// RollbackRequest asks for an environment to go back to a previous release:
// To, or the warm standby, or the release before the current one.
type RollbackRequest struct {
	App        string `json:"app"`
	Env        string `json:"env"`
	To         string `json:"to,omitempty"`
	Actor      string `json:"actor"`
	BreakGlass string `json:"break_glass,omitempty"`
	Wait       bool   `json:"wait,omitempty"`
	// Force, when the release to go back to predates the database's schema
	// (a migration was completed since), first rolls the database back as
	// `gantry db rollback --force` would (restoring the snapshot taken
	// before the change), then switches. Without it such a rollback is
	// refused by the schema gate.
	Force bool `json:"force,omitempty"`
}

// ContinueRequest asks for the paused rollout of an environment to go on
// from its next order group, or with Abort to put its candidate back.
type ContinueRequest struct {
	App        string `json:"app"`
	Env        string `json:"env"`
	Actor      string `json:"actor"`
	Abort      bool   `json:"abort,omitempty"`
	BreakGlass string `json:"break_glass,omitempty"`
}

// CloneRequest asks for a new environment Dst with Src's settings and release.
type CloneRequest struct {
	App      string `json:"app"`
	Src      string `json:"src"`
	Dst      string `json:"dst"`
	WithData bool   `json:"with_data,omitempty"`
	PostCopy string `json:"post_copy,omitempty"`
	Actor    string `json:"actor"`
	// BreakGlass is the recorded reason to clone during a freeze window of
	// the source.
	BreakGlass string `json:"break_glass,omitempty"`
	// Release, when set, is rolled out on the clone instead of the one Src
	// runs (a preview serves its branch's build); Hosts replace the hosts
	// derived from Dst's name; Preview marks the clone as a preview.
	Release string   `json:"release,omitempty"`
	Hosts   []string `json:"hosts,omitempty"`
	Preview *Preview `json:"preview,omitempty"`
}

// RenameRequest renames Old to New; when New exists it is first renamed
// to DisplaceTo (test → testold, then testnew → test), as one operation.
type RenameRequest struct {
	App        string `json:"app"`
	Old        string `json:"old"`
	New        string `json:"new"`
	DisplaceTo string `json:"displace_to,omitempty"`
	Actor      string `json:"actor"`
	BreakGlass string `json:"break_glass,omitempty"`
}

// DeleteEnvironmentRequest deletes an environment, keeping its history.
type DeleteEnvironmentRequest struct {
	App   string `json:"app"`
	Env   string `json:"env"`
	Force bool   `json:"force,omitempty"`
	// Purge also removes the environment's persistent directories
	// (services.<service>.persist), which a delete otherwise keeps.
	Purge bool `json:"purge,omitempty"`
	// KeepData keeps the database Gantry created for the environment (a
	// clone's copy, a preview's), which a delete otherwise drops.
	KeepData bool   `json:"keep_data,omitempty"`
	Actor    string `json:"actor"`
}

// WorkflowService runs the environment lifecycle and approvals (package deploy).
type WorkflowService interface {
	Clone(ctx context.Context, req CloneRequest, progress Progress) (*Deployment, error)
	Rename(ctx context.Context, req RenameRequest, progress Progress) (*Deployment, error)
	DeleteEnvironment(ctx context.Context, req DeleteEnvironmentRequest) error
	Approve(ctx context.Context, req ApproveRequest) (*Approval, error)
}

// BuildRequest asks for a release to be built from a git ref of an app.
type BuildRequest struct {
	App     string `json:"app"`
	Ref     string `json:"ref"`
	Version string `json:"version,omitempty"`
	Rebuild bool   `json:"rebuild,omitempty"`
	Actor   string `json:"actor"`
}

// Event is one progress report of a long operation, streamed to the CLI
// and the dashboard as it happens.
type Event struct {
	DeploymentID int64         `json:"deployment_id,omitempty"`
	Step         string        `json:"step,omitempty"`
	State        string        `json:"state,omitempty"`
	Message      string        `json:"message"`
	Elapsed      time.Duration `json:"elapsed"`
}

// Progress receives events as an operation runs; it may be nil.
type Progress func(Event)

// DeployService runs deployments (package deploy).
type DeployService interface {
	Deploy(ctx context.Context, req DeployRequest, progress Progress) (*Deployment, error)
	Promote(ctx context.Context, req PromoteRequest, progress Progress) (*Deployment, error)
	Rollback(ctx context.Context, req RollbackRequest, progress Progress) (*Deployment, error)
	// Logs writes the recent output of an environment's active instances
	// (of one service when service is not empty) and follows it when asked.
	Logs(ctx context.Context, app, env, service string, tail int, follow bool, w io.Writer) error
}

// RepoChecker checks, before an app is registered, that its repository is
// a git repository the server can read (package build). It returns
// EINVALID saying what is wrong with which path or URL.
type RepoChecker interface {
	CheckRepo(ctx context.Context, repo string) error
}

// ReleaseService builds releases.
type ReleaseService interface {
	// BuildRelease builds ref, or returns the existing release of the same
	// commit unless req.Rebuild.
	BuildRelease(ctx context.Context, req BuildRequest, progress Progress) (*Release, error)
}

// ImportRequest registers images built by an outside CI as a release.
type ImportRequest struct {
	App     string `json:"app"`
	Version string `json:"version"`
	// Commit is what the images were built from; its gantry.yml becomes the
	// release's manifest.
	Commit string `json:"commit"`
	Ref    string `json:"ref,omitempty"`
	// Images maps a service to repository@sha256:<digest>.
	Images map[string]string `json:"images"`
	Actor  string            `json:"actor"`
}

// ReleaseImporter records releases of images built elsewhere; a
// ReleaseService may offer it.
type ReleaseImporter interface {
	ImportRelease(ctx context.Context, req ImportRequest) (*Release, error)
}

// DatabaseService runs the gantry db verbs on an environment's database
// through the server, which holds its binding (the DATABASE_URL secret and
// the one snapshot directory) (package deploy). The verbs that change the
// database hold the environment's lock, so none runs beside a deployment;
// the actor is the identity in ctx (gantry.IdentityFrom).
type DatabaseService interface {
	DatabaseStatus(ctx context.Context, app, env string) (*DatabaseStatus, error)
	// DatabaseContract completes the active migration now: refused while a
	// slot that needs the old schema may take traffic, unless force.
	DatabaseContract(ctx context.Context, app, env string, force bool) (*MigrationRecord, error)
	// DatabaseRollback undoes the active migration; across a contract only
	// with force. It refuses while the release of the active slot needs
	// the migration: `gantry rollback ENV` flips back first.
	DatabaseRollback(ctx context.Context, app, env string, force bool) (*MigrationRecord, error)
	// Snapshots lists the environment's snapshots, newest first.
	Snapshots(ctx context.Context, app, env string) ([]*Snapshot, error)
	// Snapshot takes a snapshot now.
	Snapshot(ctx context.Context, app, env, reason string) (*Snapshot, error)
	// Restore replaces the environment's database with a snapshot.
	Restore(ctx context.Context, app, env, name string) (*MigrationRecord, error)
}

// ImageService prunes unused images (package deploy).
type ImageService interface {
	PruneImages(ctx context.Context, keepReleases int) (removed []string, err error)
}
