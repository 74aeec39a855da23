package hook

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gantry "github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
)

// UserAgent is what webhooks and notifications send as User-Agent.
const UserAgent = "gantry-hook/1"

// webhookBody is the JSON a hook's webhook receives.
type webhookBody struct {
	Context
	Time time.Time `json:"time"`
}

// post sends one attempt of a webhook and classifies the outcome: 2xx is a
// success; network errors, timeouts, 5xx and 429 are worth another try; any
// other status is final, since asking again would get the same answer.
func (r *Runner) post(ctx context.Context, method, rawURL string, body []byte, delivery string, hc Context, m gantry.Masker) attempt {
	var a attempt
	u, err := expand(rawURL, hc)
	if err != nil {
		a.err = err.Error()
		return a
	}
	if method == "" {
		method = http.MethodPost
	}
	timeout := r.WebhookTimeout
	if timeout <= 0 {
		timeout = DefaultWebhookTimeout
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	var rd io.Reader
	if method != http.MethodGet && body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		// The message may quote the URL, which may hold a secret.
		a.err = "invalid webhook request"
		return a
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("User-Agent", UserAgent)
	// The same key on every attempt lets a receiver drop a repeat whose first
	// delivery worked but whose answer got lost.
	req.Header.Set("Idempotency-Key", delivery)
	if hc.Phase != "" {
		req.Header.Set("X-Gantry-Phase", hc.Phase)
	}

	resp, err := r.client().Do(req)
	if err != nil {
		a.retryable = true
		switch {
		case parent.Err() != nil:
			a.err, a.retryable = parent.Err().Error(), false
		case ctx.Err() != nil:
			a.err = fmt.Sprintf("timed out after %s", timeout)
		default:
			a.err = m.Mask(transportError(err))
		}
		return a
	}
	defer resp.Body.Close()
	limit := r.outputLimit()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, int64(limit)))
	// Drain a bounded rest so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 256<<10))

	a.status = resp.StatusCode
	a.output = m.Mask(strings.ToValidUTF8(string(head), "\uFFFD"))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		a.ok = true
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		a.retryable = true
		a.after = retryAfter(resp.Header.Get("Retry-After"))
		a.err = "HTTP " + resp.Status
	default:
		a.err = "HTTP " + resp.Status
	}
	return a
}

// transportError is err without the URL that *url.Error quotes.
func transportError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

// retryAfter reads a Retry-After header given in seconds; dates are rare
// from webhook receivers and are ignored.
func retryAfter(h string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(h))
	if err != nil || s <= 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, maxBackoff)
}

func (r *Runner) client() *http.Client {
	if r.HTTPClient != nil {
		return r.HTTPClient
	}
	return http.DefaultClient
}

// jsonBody is the body of a hook's webhook.
func (r *Runner) jsonBody(hc Context) ([]byte, error) {
	return json.Marshal(webhookBody{Context: hc, Time: r.now().UTC()})
}

// newDelivery returns a random ID shared by the attempts of one delivery.
func newDelivery() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

var placeholder = lazyre.New(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// expand fills ${NAME} placeholders of a URL from the context's vars and
// secrets. A name that neither holds is an error, rather than a request to a
// URL with a hole in it.
func expand(raw string, hc Context) (string, error) {
	var missing []string
	out := placeholder.ReplaceAllStringFunc(raw, func(p string) string {
		name := p[2 : len(p)-1]
		if v, ok := hc.Secrets[name]; ok {
			return v
		}
		if v, ok := hc.Vars[name]; ok {
			return v
		}
		missing = append(missing, name)
		return p
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("URL uses ${%s}, which is neither a variable nor a secret of environment %q", missing[0], hc.Env)
	}
	return out, nil
}

// redactURL is a URL as logs and results may show it: scheme and host only,
// since Slack-style webhook URLs carry their token in the path and purge
// APIs often in the query. Placeholders in the host stay as written.
func redactURL(raw string) string {
	if i := strings.Index(raw, "://"); i > 0 {
		rest := raw[i+3:]
		host, path, _ := strings.Cut(rest, "/")
		host, _, _ = strings.Cut(host, "?")
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
		out := raw[:i+3] + host
		if path != "" {
			out += "/…"
		}
		return out
	}
	if placeholder.MatchString(raw) && strings.HasPrefix(raw, "${") {
		// The whole URL is a secret's name, which is safe to show.
		return raw
	}
	return "(URL hidden)"
}
