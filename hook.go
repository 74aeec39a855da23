package gantry

import "context"

// CommandPath is the PATH of the app's own commands (verify commands and
// hooks): a fixed safe default, so that nothing of the server's PATH, which
// may point into a working tree or a user's bin directory, decides which
// program a command runs.
const CommandPath = "/usr/local/bin:/usr/bin:/bin"

// CommandEnv is the base environment of an app's command: PATH, LANG and
// HOME, a throwaway directory of the operation's own (removed with the
// release's unpacked files, or after the build hooks), so that what tools
// cache there neither reaches the server's home nor mixes with the commit's
// files. Callers add the GANTRY_* variables they document; nothing else of
// the server's environment is passed, because the server's credentials
// must not reach the app's code.
func CommandEnv(home string) []string {
	env := []string{"PATH=" + CommandPath, "LANG=C.UTF-8"}
	if home != "" {
		env = append(env, "HOME="+home)
	}
	return env
}

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
	// Dir is where commands run: the release's unpacked files, or the
	// clean export of the commit for build hooks. Never the server's own
	// working directory: a caller with commands to run must set it.
	Dir string
	// Home is the commands' HOME: an empty throwaway directory beside Dir.
	Home string
}

// HookRunner runs an app's hooks and sends its notifications (package hook).
type HookRunner interface {
	// RunPhase runs the hooks of hc.Phase. A failing before_* hook stops the
	// operation (the error says which and how); after_* hooks are retried and
	// their failures reported in the summary and failed, never dropped.
	RunPhase(ctx context.Context, hooks map[string][]Hook, hc HookContext) (summary string, failed bool, err error)
	// Notify announces a deployment's state to the manifest's targets;
	// vars and secrets (the environment's) fill their ${NAME} placeholders.
	Notify(ctx context.Context, targets []NotifyTarget, d *Deployment, rel *Release, vars, secrets map[string]string)
}
