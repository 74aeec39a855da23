package hook

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	gantry "github.com/gantry-dev/gantry"
)

// Defaults for the zero values of Runner's fields.
const (
	DefaultAttempts       = 5
	DefaultWebhookTimeout = 10 * time.Second
	DefaultCommandTimeout = 10 * time.Minute
	DefaultOutputLimit    = 16 << 10
	// maxBackoff caps both the exponential backoff and a server's Retry-After.
	maxBackoff = time.Minute
)

// Attribute keys of the runner's log records.
const (
	logPhase    = "phase"
	logKind     = "kind"
	logTarget   = "target"
	logAttempt  = "attempt"
	logStatus   = "status"
	logExitCode = "exit_code"
	logError    = "error"
	logDuration = "duration"
)

// Kinds of Result.
const (
	KindCommand = "command"
	KindWebhook = "webhook"
	KindSlack   = "slack"
)

// Runner runs hooks and sends notifications. Its zero value is ready to use;
// one Runner serves every deployment at once, since everything that belongs
// to one operation travels in Context.
type Runner struct {
	// Logger records each attempt, with URLs cut to their host and secret
	// values masked; nil discards.
	Logger *slog.Logger
	// HTTPClient sends webhooks; nil means a client without its own timeout,
	// since every attempt gets WebhookTimeout through its context.
	HTTPClient *http.Client
	// Attempts is how many times a post-hook, a webhook or a notification is
	// tried before it counts as failed (default 5). Pre-hook commands run once:
	// a check that fails must stop the operation, not be asked again.
	Attempts int
	// Backoff is the wait before attempt n+1 after attempt n failed (n >= 1);
	// nil means 1s, 2s, 4s, … capped at a minute.
	Backoff func(attempt int) time.Duration
	// WebhookTimeout bounds one webhook attempt (default 10s).
	WebhookTimeout time.Duration
	// CommandTimeout bounds one command attempt (default 10m).
	CommandTimeout time.Duration
	// OutputLimit is how many bytes of a command's output (its tail) or of a
	// webhook's response (its head) a Result keeps (default 16 KiB).
	OutputLimit int
	// Now stamps webhook bodies and events; nil means time.Now.
	Now func() time.Time
}

// Context is one operation's phase as hooks see it. Commands get it as
// GANTRY_* variables and webhooks as their JSON body.
type Context struct {
	App          string `json:"app"`                     // GANTRY_APP
	Env          string `json:"env"`                     // GANTRY_ENV
	Release      string `json:"release,omitempty"`       // GANTRY_RELEASE: the release ID
	Version      string `json:"version,omitempty"`       // GANTRY_VERSION
	Commit       string `json:"commit,omitempty"`        // GANTRY_COMMIT
	Actor        string `json:"actor,omitempty"`         // GANTRY_ACTOR
	Phase        string `json:"phase,omitempty"`         // GANTRY_PHASE: before_deploy, after_switch, …
	DeploymentID int64  `json:"deployment_id,omitempty"` // GANTRY_DEPLOYMENT
	URL          string `json:"url,omitempty"`           // GANTRY_URL: where the environment (or the candidate, before the switch) answers

	// Dir is the working directory of commands: the release's unpacked
	// files or the build's export. The orchestrator always sets it; empty
	// (left for tests of webhooks) would mean the server's own directory,
	// which app commands must never run in.
	Dir string `json:"-"`
	// Home is the commands' HOME, a throwaway directory; empty means Dir.
	Home string `json:"-"`
	// Vars and Secrets are the environment's variables and secret values.
	// Commands get both; ${NAME} in a webhook URL expands from both. Secret
	// values are masked in every output, error and log record.
	Vars    map[string]string `json:"-"`
	Secrets map[string]string `json:"-"`
}

// env returns the documented GANTRY_* variables, in a fixed order.
func (c Context) env() []string {
	id := ""
	if c.DeploymentID != 0 {
		id = strconv.FormatInt(c.DeploymentID, 10)
	}
	return []string{
		"GANTRY_APP=" + c.App,
		"GANTRY_ENV=" + c.Env,
		"GANTRY_RELEASE=" + c.Release,
		"GANTRY_VERSION=" + c.Version,
		"GANTRY_COMMIT=" + c.Commit,
		"GANTRY_ACTOR=" + c.Actor,
		"GANTRY_PHASE=" + c.Phase,
		"GANTRY_DEPLOYMENT=" + id,
		"GANTRY_URL=" + c.URL,
	}
}

// Result is the outcome of one hook or notification, after its last attempt.
type Result struct {
	Phase string `json:"phase,omitempty"`
	// Index is the hook's position in its phase (or the target's in notify).
	Index int    `json:"index"`
	Kind  string `json:"kind"` // command, webhook or slack
	// Target is the command, or the URL with everything that may be secret
	// cut: query, user info and any path after the host.
	Target   string `json:"target"`
	OK       bool   `json:"ok"`
	Attempts int    `json:"attempts"`
	// Status is the last HTTP status (0 when no response came back).
	Status int `json:"status,omitempty"`
	// ExitCode is the last exit code of a command; -1 when it was killed or
	// could not start. Always 0 for webhooks.
	ExitCode int `json:"exit_code,omitempty"`
	// Output is the tail of a command's output, or the head of a webhook's
	// response, with secret values masked.
	Output   string        `json:"output,omitempty"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"duration"`
}

// Err returns nil for a successful result and a coded EFAILED error that
// says which hook failed and why otherwise.
func (r Result) Err() error {
	if r.OK {
		return nil
	}
	what := r.Kind
	if r.Phase != "" {
		what = fmt.Sprintf("%s hook %d (%s)", r.Phase, r.Index+1, r.Kind)
	}
	msg := fmt.Sprintf("%s %s failed after %d attempt(s): %s", what, r.Target, r.Attempts, r.Error)
	if out := outputTail(r.Output); out != "" {
		msg += "; output: " + out
	}
	return gantry.Errorf(gantry.EFAILED, "%s", msg)
}

// errOutputMax is how much of a failed hook's output its error (a journal
// step's line) carries: the end, where a failing check says why.
const errOutputMax = 500

// outputTail is the end of a hook's output (already masked) on one line.
func outputTail(out string) string {
	out = strings.TrimSpace(out)
	if len(out) > errOutputMax {
		cut := len(out) - errOutputMax
		for cut < len(out) && !utf8.RuneStart(out[cut]) {
			cut++
		}
		out = "…" + out[cut:]
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(out, "\n", " | ")), " ")
}

// Failed returns the results that did not succeed.
func Failed(results []Result) []Result {
	var out []Result
	for _, r := range results {
		if !r.OK {
			out = append(out, r)
		}
	}
	return out
}

// Before runs a phase's pre-hooks in order. The first failure stops the run
// and is returned as an EFAILED error; the caller must then stop the
// operation. The results cover every hook that ran, the failed one last, so
// its output can be shown. Commands run once; webhooks are retried on
// network errors, 5xx and 429.
func (r *Runner) Before(ctx context.Context, hooks []gantry.Hook, hc Context) ([]Result, error) {
	var results []Result
	for i, h := range hooks {
		if err := ctx.Err(); err != nil {
			return results, gantry.Errorf(gantry.EFAILED, "%s hooks: %v", hc.Phase, err)
		}
		attempts := r.attempts()
		if h.Webhook == nil {
			attempts = 1
		}
		res := r.run(ctx, h, i, hc, attempts)
		results = append(results, res)
		if !res.OK {
			return results, res.Err()
		}
	}
	return results, nil
}

// After runs a phase's post-hooks in order. Each is tried up to Attempts
// times with backoff; a failure does not stop the hooks after it. Every
// hook's result is returned, and failures are also logged, so a failed
// post-hook is never lost.
func (r *Runner) After(ctx context.Context, hooks []gantry.Hook, hc Context) []Result {
	results := make([]Result, 0, len(hooks))
	for i, h := range hooks {
		results = append(results, r.run(ctx, h, i, hc, r.attempts()))
	}
	return results
}

// run tries one hook up to attempts times.
func (r *Runner) run(ctx context.Context, h gantry.Hook, index int, hc Context, attempts int) Result {
	m := gantry.NewMasker(hc.Secrets)
	res := Result{Phase: hc.Phase, Index: index}
	var try func(ctx context.Context) attempt
	switch {
	case h.Webhook != nil:
		res.Kind, res.Target = KindWebhook, redactURL(h.Webhook.URL)
		body, err := r.jsonBody(hc)
		if err != nil {
			res.Error = err.Error()
			return res
		}
		delivery := newDelivery()
		try = func(ctx context.Context) attempt {
			return r.post(ctx, h.Webhook.Method, h.Webhook.URL, body, delivery, hc, m)
		}
	case h.Command != "":
		res.Kind, res.Target = KindCommand, h.Command
		try = func(ctx context.Context) attempt { return r.command(ctx, h.Command, hc, m) }
	default:
		res.Kind, res.Error = KindCommand, "empty hook: neither command nor webhook"
		return res
	}
	return r.retry(ctx, res, attempts, try)
}

// attempt is the outcome of one try.
type attempt struct {
	ok        bool
	retryable bool
	status    int
	exitCode  int
	output    string
	err       string
	// after is a server's Retry-After, zero when it gave none.
	after time.Duration
}

// retry calls try until it succeeds, fails for good, or attempts run out,
// waiting Backoff in between, and fills res from the last attempt.
func (r *Runner) retry(ctx context.Context, res Result, attempts int, try func(context.Context) attempt) Result {
	log := r.logger().With(logPhase, res.Phase, logKind, res.Kind, logTarget, res.Target)
	start := time.Now()
	for n := 1; ; n++ {
		a := try(ctx)
		res.Attempts, res.OK = n, a.ok
		res.Status, res.ExitCode, res.Output, res.Error = a.status, a.exitCode, a.output, a.err
		res.Duration = time.Since(start)
		if a.ok {
			log.Info("hook done", logAttempt, n, logStatus, a.status, logExitCode, a.exitCode, logDuration, res.Duration)
			return res
		}
		log.Warn("hook failed", logAttempt, n, logStatus, a.status, logExitCode, a.exitCode, logError, a.err)
		if !a.retryable || n >= attempts {
			return res
		}
		wait := r.backoff(n)
		if a.after > wait {
			wait = min(a.after, maxBackoff)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			res.Error = fmt.Sprintf("%s; gave up: %v", res.Error, ctx.Err())
			return res
		case <-t.C:
		}
	}
}

func (r *Runner) attempts() int {
	if r.Attempts > 0 {
		return r.Attempts
	}
	return DefaultAttempts
}

func (r *Runner) backoff(n int) time.Duration {
	if r.Backoff != nil {
		return r.Backoff(n)
	}
	d := time.Second << min(n-1, 6)
	return min(d, maxBackoff)
}

func (r *Runner) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (r *Runner) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *Runner) outputLimit() int {
	if r.OutputLimit > 0 {
		return r.OutputLimit
	}
	return DefaultOutputLimit
}
