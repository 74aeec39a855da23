// Package hook runs the hooks a manifest declares around deployment phases
// (shell commands and HTTP webhooks) and sends notifications of deployment
// events to Slack-compatible and generic JSON webhooks.
//
// A pre-hook (before_*) that fails stops the operation: Before returns the
// failure and the caller must not go on. A post-hook (after_*) and a
// notification are retried with backoff and every outcome is returned as a
// Result, so that nothing fails silently; the caller journals the results.
//
// The package must not decide what a failure means for a deployment, touch
// the Store, or read configuration: the orchestrator (package deploy) calls it
// with the hooks of one phase and a Context, and acts on what comes back.
// Secret values are never logged and are masked in every output it returns.
package hook
