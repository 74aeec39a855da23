package gantry

import "context"

// NotifyTarget is where deployment events are announced. Exactly one field is
// set. A URL may hold ${NAME} placeholders, filled at send time from the
// environment's vars and secrets, so a webhook token need not be committed.
type NotifyTarget struct {
	// Slack is a Slack-compatible incoming webhook: it receives {"text": "…"}.
	Slack string `json:"slack,omitempty"`
	// Webhook is a generic endpoint: it receives the event as JSON.
	Webhook string `json:"webhook,omitempty"`
	// Environments limits the target to these environments' events; empty
	// means every environment.
	Environments []string `json:"environments,omitempty"`
}

// HookContext is what a hook knows of the operation it runs around.
type HookContext struct {
	App, Env, Release, Version, Commit, Actor, Phase string
	DeploymentID                                     int64
	// URL is where the environment (or, before the switch, the candidate) answers.
	URL string
	// Vars and Secrets are the environment's; secrets are masked in output.
	Vars, Secrets map[string]string
}

// HookRunner runs an app's hooks and sends its notifications (package hook).
type HookRunner interface {
	// RunPhase runs the hooks of hc.Phase. A failing before_* hook stops the
	// operation (the error says which and how); after_* hooks are retried and
	// their failures reported in the summary and failed, never dropped.
	RunPhase(ctx context.Context, hooks map[string][]Hook, hc HookContext) (summary string, failed bool, err error)
	// Notify announces a deployment's state to the manifest's targets.
	Notify(ctx context.Context, targets []NotifyTarget, d *Deployment, rel *Release)
}
