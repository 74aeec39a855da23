package gantry

import "time"

// Deployment kinds.
const (
	KindDeploy   = "deploy"
	KindPromote  = "promote"
	KindRollback = "rollback"
	KindClone    = "clone"
	KindRename   = "rename"
	// KindContinue is not a deployment of its own: Continue resumes a paused
	// one. It names the operation to the gates and in lock messages.
	KindContinue = "continue"
)

// Deployment states.
const (
	DeploymentRunning   = "running"
	DeploymentSucceeded = "succeeded"
	DeploymentFailed    = "failed"
	// DeploymentRecovered marks a deployment interrupted by a crash and
	// brought to a consistent state at the next start.
	DeploymentRecovered = "recovered"
	// DeploymentPaused marks an ordered rollout stopped after a group, as
	// asked (deploy --pause-after): it keeps the environment's lock and its
	// candidate running until `gantry continue` resumes it.
	DeploymentPaused = "paused"
)

// Deployment is one operation on one environment, with its journal.
type Deployment struct {
	ID          int64  `json:"id"`
	App         string `json:"app"`
	Env         string `json:"env"`
	Kind        string `json:"kind"`
	ReleaseID   string `json:"release_id"`
	Version     string `json:"version,omitempty"`
	FromRelease string `json:"from_release,omitempty"`
	FromEnv     string `json:"from_env,omitempty"`
	Slot        string `json:"slot,omitempty"`
	Strategy    string `json:"strategy,omitempty"`
	Actor       string `json:"actor"`
	State       string `json:"state"`
	Error       string `json:"error,omitempty"`
	// PauseAfter, Only and GroupDone are an ordered rollout's typed resume
	// state: the group to pause after (nil: none), the one service it
	// redeploys ("" for all), and the last order group that is up on the
	// candidate (nil: none yet). Continue resumes from them; nothing is
	// parsed back out of the journal's text.
	PauseAfter *int      `json:"pause_after,omitempty"`
	Only       string    `json:"only,omitempty"`
	GroupDone  *int      `json:"group_done,omitempty"`
	Steps      []Step    `json:"steps,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	FinishedAt time.Time `json:"finished_at,omitempty"`
}

// Step states.
const (
	StepStarted = "started"
	StepDone    = "done"
	StepFailed  = "failed"
	StepSkipped = "skipped"
)

// Step is one journal entry: written before its action runs, and updated
// with its result after.
type Step struct {
	Seq       int       `json:"seq"`
	Name      string    `json:"name"`
	State     string    `json:"state"`
	Detail    string    `json:"detail,omitempty"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at,omitempty"`
}

// DeploymentFilter narrows ListDeployments; zero fields match everything.
type DeploymentFilter struct {
	App   string
	Env   string
	State string
	// BeforeID pages backwards through history.
	BeforeID int64
	Limit    int
}

// PeriodFilter selects an app's deployments created in [From, To), for
// figures over a period such as delivery metrics.
type PeriodFilter struct {
	App string
	// Env is one environment, or "" for all of the app's.
	Env      string
	From, To time.Time
	// Steps names the journal steps to return with each deployment (only
	// those, in journal order); none when empty. Delivery metrics need a
	// few (when the switch ended), not whole journals.
	Steps []string
}

// Validate is the one check every store makes of a PeriodFilter.
func (f PeriodFilter) Validate() error {
	if f.App == "" {
		return Errorf(EINVALID, "a period of deployments needs an app")
	}
	if !f.To.After(f.From) {
		return Errorf(EINVALID, "a period must end after it starts (from %s, to %s)",
			f.From.UTC().Format(time.RFC3339), f.To.UTC().Format(time.RFC3339))
	}
	return nil
}
