package hook

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	gantry "github.com/gantry-dev/gantry"
)

// StateWaitingApproval is the state of a deployment that waits for
// approvals. Notify stays quiet for it: approvers are asked through their
// own channel, and a team channel that pinged on every queued promotion
// would soon be muted.
const StateWaitingApproval = "waiting_approval"

// Event is a deployment event as notifications tell it.
type Event struct {
	// Context says which app, environment, release and deployment; its
	// Phase is usually empty, and its Vars and Secrets fill ${NAME} in the
	// targets' URLs.
	Context
	Kind  string    `json:"kind"`  // deploy, promote or rollback
	State string    `json:"state"` // running, succeeded, failed, recovered, waiting_approval
	Error string    `json:"error,omitempty"`
	Time  time.Time `json:"time"`
}

// EventFor returns the event of a deployment in its current state. rel may
// be nil; it adds the commit.
func EventFor(d *gantry.Deployment, rel *gantry.Release) Event {
	ev := Event{
		Context: Context{
			App: d.App, Env: d.Env, Release: d.ReleaseID, Version: d.Version,
			Actor: d.Actor, DeploymentID: d.ID,
		},
		Kind:  d.Kind,
		State: d.State,
		Error: d.Error,
	}
	if rel != nil {
		ev.Commit = rel.Commit
		if ev.Version == "" {
			ev.Version = rel.Version
		}
	}
	return ev
}

// Quiet reports whether the event is not announced.
func (ev Event) Quiet() bool { return ev.State == StateWaitingApproval }

// Text is the event in one line of plain text, as Slack shows it:
// "shop: promote of 1.4.0 to prod by alice succeeded (deployment 42) https://shop.example".
func (ev Event) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", ev.App, kindOr(ev.Kind))
	if what := firstOf(ev.Version, ev.Release); what != "" {
		fmt.Fprintf(&b, " of %s", what)
	}
	fmt.Fprintf(&b, " to %s", ev.Env)
	if ev.Actor != "" {
		fmt.Fprintf(&b, " by %s", ev.Actor)
	}
	fmt.Fprintf(&b, " %s", stateWords(ev.State))
	if ev.Error != "" {
		fmt.Fprintf(&b, ": %s", ev.Error)
	}
	if ev.DeploymentID != 0 {
		fmt.Fprintf(&b, " (deployment %d)", ev.DeploymentID)
	}
	if ev.URL != "" {
		fmt.Fprintf(&b, " %s", ev.URL)
	}
	return b.String()
}

func kindOr(k string) string {
	if k == "" {
		return gantry.KindDeploy
	}
	return k
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func stateWords(s string) string {
	switch s {
	case gantry.DeploymentRunning:
		return "started"
	case StateWaitingApproval:
		return "waits for approval"
	case "":
		return "changed"
	}
	return s
}

// slackBody is what a Slack-compatible incoming webhook accepts. The text
// escapes &, < and >, which Slack reads as markup.
type slackBody struct {
	Text string `json:"text"`
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// genericBody is what a generic webhook receives: the event, and its text
// for receivers that only show a message.
type genericBody struct {
	Event
	Text string `json:"text"`
}

// Notify sends the event to every target at once, each retried up to
// Attempts times on network errors, timeouts, 5xx and 429, and returns one
// result per target it sent to, in the targets' order (Index is the
// target's position); a target limited to other environments is skipped.
// It sends nothing, and returns nil, for an event that waits for approval. Notifications never stop an
// operation; the caller journals failed results.
func (r *Runner) Notify(ctx context.Context, targets []gantry.NotifyTarget, ev Event) []Result {
	if len(targets) == 0 {
		return nil
	}
	if ev.Quiet() {
		r.logger().Debug("notification held back", "state", ev.State, "env", ev.Env)
		return nil
	}
	if ev.Time.IsZero() {
		ev.Time = r.now()
	}
	ev.Time = ev.Time.UTC()
	m := gantry.NewMasker(ev.Secrets)
	ev.Error = m.Mask(ev.Error)
	results := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		res := Result{Index: i}
		if len(t.Environments) > 0 && !slices.Contains(t.Environments, ev.Env) {
			res.Kind, res.OK = skipped, true
			results[i] = res
			continue
		}
		var body any
		var rawURL string
		switch {
		case t.Slack != "":
			res.Kind, rawURL = KindSlack, t.Slack
			body = slackBody{Text: slackEscaper.Replace(m.Mask(ev.Text()))}
		case t.Webhook != "":
			res.Kind, rawURL = KindWebhook, t.Webhook
			body = genericBody{Event: ev, Text: m.Mask(ev.Text())}
		default:
			res.Kind, res.Error = KindWebhook, "empty notification target"
			results[i] = res
			continue
		}
		res.Target = redactURL(rawURL)
		data, err := json.Marshal(body)
		if err != nil {
			res.Error = err.Error()
			results[i] = res
			continue
		}
		delivery := newDelivery()
		wg.Go(func() {
			results[i] = r.retry(ctx, res, r.attempts(), func(ctx context.Context) attempt {
				return r.post(ctx, "POST", rawURL, data, delivery, ev.Context, m)
			})
		})
	}
	wg.Wait()
	return slices.DeleteFunc(results, func(r Result) bool { return r.Kind == skipped })
}

// skipped marks, inside Notify, a target limited to other environments.
const skipped = "skipped"
