package gantry

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
