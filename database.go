package gantry

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"
)

// Migration engines (DatabaseSpec.Migrations.Engine).
const (
	MigrationEnginePgroll = "pgroll"
	MigrationEngineSQL    = "sql"
	// MigrationEngineCommand is the app's own migration command (Rails,
	// Django, Gitea…): Gantry cannot see what it changes, so it runs it with
	// every request held and a snapshot taken first.
	MigrationEngineCommand = "command"
)

// MigrationsArtifact is the key, in Release.Artifacts, of the tarball of the
// manifest's database.migrations.dir taken from the release's commit. It
// cannot collide with a service: service names never start with "@".
const MigrationsArtifact = "@migrations"

// Migration plan actions.
const (
	PlanNone   = "none"   // the database already has every migration of the release
	PlanExpand = "expand" // start one migration; contract after the old slot has stopped
	PlanApply  = "apply"  // nothing live: start and complete every pending migration
	PlanRefuse = "refuse" // several pending, a contract still due, or history mismatch
)

// Migration phases, as the ledger records them.
const (
	PhaseExpand   = "expand"
	PhaseContract = "contract"
	PhaseRollback = "rollback"
	PhaseRestore  = "restore"
	PhaseCopy     = "copy"
	// PhaseApp records a deploy of an app that migrates its own schema:
	// the schema's fingerprint before and after, and the snapshot before.
	PhaseApp = "app"
)

// DatabaseBinding is an environment's database as the changer sees it.
type DatabaseBinding struct {
	App string `json:"app"`
	Env string `json:"env"`
	// Engine is the manifest's migrations engine: "pgroll" or "sql".
	Engine string `json:"engine"`
	// URL comes from the environment's secret; it is never logged or shown.
	URL string `json:"-"`
	// SnapshotDir holds this environment's snapshots (one directory each).
	SnapshotDir string `json:"snapshot_dir,omitempty"`
	// KeepSnapshots is the retention: older snapshots are removed (0: 10).
	KeepSnapshots int `json:"keep_snapshots,omitempty"`
}

// SnapshotRoot is where a server whose data directory is dataDir (gantry
// server --data) keeps every environment's database snapshots.
func SnapshotRoot(dataDir string) string {
	return filepath.Join(dataDir, "snapshots")
}

// SnapshotDir is where an environment's database snapshots live under a
// SnapshotRoot: <data>/snapshots/<app>/<env>. The server and the CLI's
// direct mode both call it, so they list and restore the same snapshots.
func SnapshotDir(root, app, env string) string {
	return filepath.Join(root, app, env)
}

// PlanRequest is what Plan looks at.
type PlanRequest struct {
	Release *Release
	// Migrations is the release's migrations directory (the manifest's
	// database.migrations.dir of its commit) as a file system rooted there.
	Migrations fs.FS
	// Live says an app version may be using the database (a slot is active
	// or standby). When false, pending migrations are applied completely.
	Live bool
	// Maintenance is the strategy for changes that cannot be made
	// compatible: the router holds writes while every pending migration is
	// applied completely (start and complete) and the new release takes
	// over; old instances may see errors on reads in the meantime.
	Maintenance bool
}

// MigrationPlan says what a deploy of a release will do to the database.
type MigrationPlan struct {
	App       string `json:"app"`
	Env       string `json:"env"`
	ReleaseID string `json:"release_id"`
	Engine    string `json:"engine"`
	Action    string `json:"action"`
	// Pending names the migrations not yet applied, in order.
	Pending []string `json:"pending,omitempty"`
	// Schema is the schema the release's instances will use after Expand.
	Schema string `json:"schema,omitempty"`
	// Migrations names every migration the release carries, in order: the
	// ones its instances may rely on.
	Migrations []string `json:"migrations,omitempty"`
	// Reason explains a refusal (and is shown to the user as is).
	Reason string `json:"reason,omitempty"`

	// Sources holds the pending migrations' files, keyed by name; an engine
	// reads them in Expand. Not serialised: a plan is re-made after a restart.
	Sources map[string]MigrationSource `json:"-"`
}

// MigrationSource is one migration as read from a release.
type MigrationSource struct {
	Name     string
	File     string // path inside the migrations directory
	Expand   []byte // pgroll: the migration JSON; sql: the expand/ file
	Contract []byte // sql: the contract/ file, if any
	Rollback []byte // sql: the rollback/ file, if any
}

// ContractGuard is what the orchestrator knows about who may still use the
// old schema. Contract refuses unless the environment shows no slot other
// than the one running the release that expanded may take traffic.
type ContractGuard struct {
	// Env is the environment's current record; nil means "unknown" and is
	// refused unless Force.
	Env *Environment
	// Force skips the slot check (gantry db contract --force).
	Force bool
}

// RollbackOptions modifies Rollback.
type RollbackOptions struct {
	// Force allows a rollback across a completed contract: the snapshot taken
	// before the contract is restored, losing the writes made since.
	Force bool
}

// MigrationRecord is one ledger row: which release applied which migration,
// in which phase, when, and the snapshot taken before it.
type MigrationRecord struct {
	ID        int64  `json:"id"`
	App       string `json:"app"`
	Env       string `json:"env"`
	ReleaseID string `json:"release_id,omitempty"`
	Engine    string `json:"engine"`
	Migration string `json:"migration"`
	Phase     string `json:"phase"`
	Snapshot  string `json:"snapshot,omitempty"`
	Note      string `json:"note,omitempty"`
	// Before and After are the schema's fingerprints around an app's own
	// migration (PhaseApp): After is the schema ReleaseID ran on.
	Before string    `json:"before,omitempty"`
	After  string    `json:"after,omitempty"`
	At     time.Time `json:"at"`
}

// DatabaseStatus is the ledger and the migration in flight, if any.
type DatabaseStatus struct {
	App    string `json:"app"`
	Env    string `json:"env"`
	Engine string `json:"engine"`
	// Active names the migration expanded but not yet contracted.
	Active string `json:"active,omitempty"`
	// ActiveRelease is the release that expanded it.
	ActiveRelease string `json:"active_release,omitempty"`
	// SchemaVersion is the latest migration applied (expanded or complete).
	SchemaVersion string             `json:"schema_version,omitempty"`
	Ledger        []*MigrationRecord `json:"ledger"`
}

// Snapshot is one pg_dump directory of an environment's database.
type Snapshot struct {
	Name          string    `json:"name"`
	App           string    `json:"app"`
	Env           string    `json:"env"`
	Reason        string    `json:"reason"` // "before expand 02_rename", "manual", …
	SchemaVersion string    `json:"schema_version,omitempty"`
	Size          int64     `json:"size"`
	CreatedAt     time.Time `json:"created_at"`
	// Writes is the database's write counter when the snapshot was taken
	// (rows inserted, updated and deleted in the app's tables, from the
	// server's cumulative statistics); nil when it could not be read.
	// WritesSince compares it with the counter now.
	Writes *WriteCount `json:"writes,omitempty"`
}

// WriteCount is a reading of a database's cumulative write counter.
type WriteCount struct {
	Rows int64 `json:"rows"`
	// Epoch changes when the counters are reset (PostgreSQL's stats_reset):
	// a difference across two epochs means nothing.
	Epoch string `json:"epoch,omitempty"`
}

// WritesSince is the number of rows written since a snapshot, as
// "about N" (the server's statistics lag by about a second); Known is
// false when it cannot be told (the counters were reset, or the snapshot
// predates their recording).
type WritesSince struct {
	Rows  int64
	Known bool
}

// String says it for a person: "about 12 rows" or "an unknown number of rows".
func (w WritesSince) String() string {
	switch {
	case !w.Known:
		return "an unknown number of rows"
	case w.Rows == 1:
		return "about 1 row"
	}
	return fmt.Sprintf("about %d rows", w.Rows)
}

// Database copy methods.
const (
	CopyDump     = "dump"     // pg_dump/pg_restore -j: online, the default
	CopyTemplate = "template" // CREATE DATABASE … TEMPLATE: the source must be quiet
)

// CopyRequest copies an environment's database into another's.
type CopyRequest struct {
	From, To DatabaseBinding
	Method   string // CopyDump (default) or CopyTemplate
	// PostCopySQL runs in the copy once it is complete (anonymise, neutralise
	// e-mail and webhooks). Empty: nothing runs.
	PostCopySQL string
	// Begun, when set, is given the copy's record once Copy knows whether it
	// creates To's database and before it makes or fills anything, to keep:
	// a crash from there on leaves a copy its caller knows of. An error
	// stops the copy.
	Begun func(*CopyRecord) error
}

// CopyRecord is the provenance of a copied database.
type CopyRecord struct {
	FromApp       string `json:"from_app"`
	FromEnv       string `json:"from_env"`
	ToApp         string `json:"to_app"`
	ToEnv         string `json:"to_env"`
	Method        string `json:"method"`
	SchemaVersion string `json:"schema_version,omitempty"`
	PostCopy      bool   `json:"post_copy"`
	// Created says Copy created To's database (else it found it empty):
	// DiscardCopy then drops it rather than emptying it.
	Created   bool          `json:"created,omitempty"`
	StartedAt time.Time     `json:"started_at"`
	Took      time.Duration `json:"took"`
}

// DatabaseChanger applies an app's migrations around a blue-green deploy:
// Plan, then Expand before the candidate starts, the switch, then Contract
// once no slot needing the old schema may take traffic.
//
// All methods that change the database hold a per-database advisory lock,
// so migrations, restores and copies on one database never overlap.
type DatabaseChanger interface {
	Plan(ctx context.Context, b DatabaseBinding, req PlanRequest) (*MigrationPlan, error)
	// Expand snapshots the database, then starts the plan's migration (or,
	// for PlanApply, applies every pending one). PlanNone is a no-op.
	Expand(ctx context.Context, b DatabaseBinding, plan *MigrationPlan) (*MigrationRecord, error)
	// Contract snapshots the database, then completes the active migration.
	Contract(ctx context.Context, b DatabaseBinding, guard ContractGuard) (*MigrationRecord, error)
	// Rollback undoes the active migration; across a completed contract it
	// refuses (EPOLICY, saying what would be lost) unless opts.Force.
	Rollback(ctx context.Context, b DatabaseBinding, opts RollbackOptions) (*MigrationRecord, error)
	// ConnVars returns DATABASE_URL (with the search_path of the release's
	// schema version) and GANTRY_DB_SCHEMA for an instance of a release.
	ConnVars(ctx context.Context, b DatabaseBinding, migrations fs.FS) (map[string]string, error)
	Status(ctx context.Context, b DatabaseBinding) (*DatabaseStatus, error)

	Snapshot(ctx context.Context, b DatabaseBinding, reason string) (*Snapshot, error)
	Snapshots(ctx context.Context, b DatabaseBinding) ([]*Snapshot, error)
	Restore(ctx context.Context, b DatabaseBinding, name string) (*MigrationRecord, error)
	// Copy refuses (ECONFLICT) while a pgroll migration is active on From.
	// A copy that fails removes what it made.
	Copy(ctx context.Context, req CopyRequest) (*CopyRecord, error)
	// DiscardCopy removes a copy that rec made in to, for a clone that
	// failed after it: the database when Copy created it, else everything
	// in it, so that the clone can run again. With rec nil (a clone a
	// crash interrupted during its copy), only a copy into to that was
	// left unfinished, which Copy makes under a name of its own.
	DiscardCopy(ctx context.Context, rec *CopyRecord, to DatabaseBinding) error
	// WritesSince counts the rows written in b's database since snap was
	// taken (what restoring it would lose), from the counter it recorded.
	WritesSince(ctx context.Context, b DatabaseBinding, snap *Snapshot) (WritesSince, error)

	// Fingerprint is a digest of the app's schema (tables, columns, types,
	// constraints, indexes; Gantry's own bookkeeping excluded): for apps
	// that migrate themselves it is the only way to see a change.
	Fingerprint(ctx context.Context, b DatabaseBinding) (string, error)
	// Record appends rec to the ledger (an app's own migration, PhaseApp).
	Record(ctx context.Context, b DatabaseBinding, rec *MigrationRecord) (*MigrationRecord, error)
	// Ledger returns the ledger, oldest first, whatever the engine.
	Ledger(ctx context.Context, b DatabaseBinding) ([]*MigrationRecord, error)
}

// DatabaseProvisioner creates and drops the database a binding names: the
// databases of preview environments, which Gantry makes and removes with
// them. An optional ability of a DatabaseChanger (package dbchange).
type DatabaseProvisioner interface {
	// CreateDatabase creates b's database, or accepts an existing empty one.
	CreateDatabase(ctx context.Context, b DatabaseBinding) error
	// DropDatabase drops b's database and every session on it; a database
	// that does not exist is no error.
	DropDatabase(ctx context.Context, b DatabaseBinding) error
}

// OldSchemaSlot returns a slot of env that runs a release other than
// releaseID and may take traffic (starting, active or standby, warm or not),
// or nil. Such a slot may need the schema a contract would remove.
func OldSchemaSlot(env *Environment, releaseID string) *Slot {
	if env == nil {
		return nil
	}
	for _, name := range []string{SlotBlue, SlotGreen} {
		s := env.Slots[name]
		if s == nil || s.ReleaseID == releaseID {
			continue
		}
		switch s.State {
		case SlotStarting, SlotActive, SlotStandby:
			return s
		}
	}
	return nil
}
