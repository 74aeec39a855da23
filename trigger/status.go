package trigger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/gantry-dev/gantry"
)

// Commit status states, as GitHub and Gitea name them; GitLab's are mapped.
const (
	statusPending = "pending"
	statusSuccess = "success"
	statusFailure = "failure"
)

// status posts a commit status to the forge that sent ev, when its hook
// has an API token: GitHub's and Gitea's POST /repos/{owner}/{repo}/statuses/{sha},
// GitLab's POST /projects/{id}/statuses/{sha}. A forge that cannot be
// reached is logged, never retried: the status is a courtesy, the journal
// is the record.
func (s *Service) status(ctx context.Context, cfg *hookConfig, ev *Event, check, state, target, description string) {
	s.noteOutcome(ev, state, description)
	if cfg.APIToken == "" || ev.Commit == "" || ev.Repo == "" {
		return
	}
	base := cfg.APIURL
	if base == "" {
		base = defaultAPI(ev)
	}
	if len(description) > 140 {
		description = description[:137] + "..."
	}
	var endpoint string
	body := map[string]string{"state": state, "description": description}
	if target != "" {
		body["target_url"] = target
	}
	req := func(b []byte) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(b))
	}
	var r *http.Request
	var err error
	switch ev.Forge {
	case gantry.ForgeGitLab:
		endpoint = fmt.Sprintf("%s/projects/%s/statuses/%s", base, url.PathEscape(ev.Repo), ev.Commit)
		body["name"] = check
		if state == statusFailure {
			body["state"] = "failed"
		}
		b, _ := json.Marshal(body)
		if r, err = req(b); err == nil {
			r.Header.Set("PRIVATE-TOKEN", cfg.APIToken)
		}
	default: // GitHub, Gitea/Forgejo
		endpoint = fmt.Sprintf("%s/repos/%s/statuses/%s", base, ev.Repo, ev.Commit)
		body["context"] = check
		b, _ := json.Marshal(body)
		if r, err = req(b); err == nil {
			if ev.Forge == gantry.ForgeGitHub {
				r.Header.Set("Authorization", "Bearer "+cfg.APIToken)
				r.Header.Set("Accept", "application/vnd.github+json")
			} else {
				r.Header.Set("Authorization", "token "+cfg.APIToken)
			}
		}
	}
	if err != nil {
		s.logger().Error("forge status", "forge", ev.Forge, "error", err)
		return
	}
	r.Header.Set("Content-Type", "application/json")
	client := s.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := client.Do(r)
	if err != nil {
		s.logger().Error("forge status", "forge", ev.Forge, "url", endpoint, "error", err)
		return
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		s.logger().Error("forge status", "forge", ev.Forge, "url", endpoint, "status", resp.Status)
		return
	}
	s.logger().Info("forge status", "forge", ev.Forge, "commit", ev.Commit, "context", check, "state", state)
}

// defaultAPI is a forge's API address when the hook names none: GitHub's
// public API, or GitLab's and Gitea's under the repository page's origin.
func defaultAPI(ev *Event) string {
	switch ev.Forge {
	case gantry.ForgeGitHub:
		return "https://api.github.com"
	}
	u, err := url.Parse(ev.WebURL)
	if err != nil || u.Host == "" {
		return ""
	}
	if ev.Forge == gantry.ForgeGitLab {
		return u.Scheme + "://" + u.Host + "/api/v4"
	}
	return u.Scheme + "://" + u.Host + "/api/v1"
}
