// Package trigger turns what happens on a forge into operations of the
// rollout engine: it verifies webhook deliveries from GitHub, GitLab and
// Gitea/Forgejo (each by its own signature scheme, in constant time),
// refuses replays, polls repositories that cannot send webhooks, reads the
// pushed commit's triggers, and builds, deploys, or makes and deletes
// preview environments, each as its hook's own token and through the same
// services (and so the same gates) a person's request goes through. It
// posts a commit status back to the forge where one is configured.
//
// It decides no policy and starts nothing by itself: every change goes
// through gantry.ReleaseService, DeployService and WorkflowService.
package trigger
