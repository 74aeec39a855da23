package gantry

import "context"

// Store keeps Gantry's state. One shared test suite (internal/storetest)
// runs against every implementation.
//
// Finders return ENOTFOUND when nothing matches; creators return ECONFLICT
// when the object exists.
type Store interface {
	CreateApp(ctx context.Context, app *App) error
	FindApp(ctx context.Context, name string) (*App, error)
	ListApps(ctx context.Context) ([]*App, error)

	CreateRelease(ctx context.Context, r *Release) error
	FindRelease(ctx context.Context, app, id string) (*Release, error)
	ListReleases(ctx context.Context, f ReleaseFilter) ([]*Release, error)

	// PutEnvironment creates or replaces an environment's record.
	PutEnvironment(ctx context.Context, env *Environment) error
	FindEnvironment(ctx context.Context, app, name string) (*Environment, error)
	ListEnvironments(ctx context.Context, app string) ([]*Environment, error)
	DeleteEnvironment(ctx context.Context, app, name string) error
	// RenameEnvironment renames an environment with its history: its
	// deployments and approvals follow the new name. ECONFLICT when the new
	// name is taken.
	RenameEnvironment(ctx context.Context, app, oldName, newName string) error

	// CreateDeployment assigns d.ID.
	CreateDeployment(ctx context.Context, d *Deployment) error
	// StartDeployment records a deployment its actor starts under the
	// environment's lock, in one transaction (one synced write, where three
	// stood in a rollback's way to its switch): d is stored as
	// CreateDeployment stores it, d.Steps are journaled as given (the
	// operation's first step, started) and get their Seq, and the lock
	// d.Actor holds on d's environment names d (SetLockDeployment).
	// ENOTFOUND, and nothing stored, when d.Actor does not hold that lock.
	StartDeployment(ctx context.Context, d *Deployment) error
	// UpdateDeployment writes d's state, error, finish time, slot and the
	// release it replaced (not its steps); what it was asked to do stays.
	UpdateDeployment(ctx context.Context, d *Deployment) error
	// FindDeployment returns a deployment with its steps.
	FindDeployment(ctx context.Context, id int64) (*Deployment, error)
	// ListDeployments returns deployments newest first, without steps.
	ListDeployments(ctx context.Context, f DeploymentFilter) ([]*Deployment, error)
	// ListDeploymentsIn returns the deployments of f.App (of f.Env when set)
	// created in [f.From, f.To), oldest first, each with its steps named in
	// f.Steps. EINVALID without an app or with To not after From.
	ListDeploymentsIn(ctx context.Context, f PeriodFilter) ([]*Deployment, error)
	// AppendStep journals a step before it acts and sets s.Seq.
	AppendStep(ctx context.Context, deploymentID int64, s *Step) error
	// UpdateStep records a step's result.
	UpdateStep(ctx context.Context, deploymentID int64, s *Step) error

	// AcquireLock takes an environment's lock, or returns ECONFLICT naming
	// the holder, the operation and since when. An expired lock is replaced.
	AcquireLock(ctx context.Context, l *Lock) error
	// ReleaseLock frees the lock if holder holds it (any holder when force).
	ReleaseLock(ctx context.Context, app, env, holder string, force bool) error
	FindLock(ctx context.Context, app, env string) (*Lock, error)
	// SetLockDeployment names, in the lock holder holds on an environment,
	// the deployment it is held for, so that a refused operation learns
	// which one. ENOTFOUND when holder does not hold the lock.
	SetLockDeployment(ctx context.Context, app, env, holder string, deploymentID int64) error

	// CreateApproval records an approval and assigns its ID.
	CreateApproval(ctx context.Context, a *Approval) error
	// ListApprovals returns an environment's approvals of a release, oldest first.
	ListApprovals(ctx context.Context, app, env, releaseID string) ([]*Approval, error)

	LeaseStore
	RouteStore

	Close() error
}
