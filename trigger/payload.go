package trigger

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
)

// The payload shapes below hold only the fields Gantry reads, named as the
// forges document them.

// ghRepo is GitHub's and Gitea's repository object.
type ghRepo struct {
	FullName string `json:"full_name"`
	HTMLURL  string `json:"html_url"`
	// PushedAt is a Unix time in GitHub's push events (a string in its
	// other events, which Gantry does not read it from).
	PushedAt json.RawMessage `json:"pushed_at"`
}

type ghPush struct {
	Ref        string `json:"ref"`
	After      string `json:"after"`
	Deleted    bool   `json:"deleted"`
	Repository ghRepo `json:"repository"`
}

type ghPull struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	PullRequest struct {
		Merged    bool      `json:"merged"`
		UpdatedAt time.Time `json:"updated_at"`
		Head      struct {
			Ref string `json:"ref"`
			SHA string `json:"sha"`
		} `json:"head"`
		Base struct {
			Ref string `json:"ref"`
		} `json:"base"`
	} `json:"pull_request"`
	Repository ghRepo `json:"repository"`
}

// fill sets ev from a GitHub or Gitea pull request event; update is the
// forge's action word for new commits.
func (p *ghPull) fill(ev *Event, update string) {
	pr := p.PullRequest
	ev.Kind, ev.MR, ev.Branch, ev.Target, ev.Commit, ev.At = kindMR, p.Number, pr.Head.Ref, pr.Base.Ref, pr.Head.SHA, pr.UpdatedAt
	ev.Repo, ev.WebURL = p.Repository.FullName, p.Repository.HTMLURL
	ev.MRAction = mrAction(p.Action, pr.Merged, map[string]string{"opened": mrOpened, "reopened": mrOpened, update: mrUpdate, "closed": mrClosed})
}

func decodeBody(forge string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return gantry.Errorf(gantry.EINVALID, "%s delivery: the body is not the JSON payload expected: %v", forge, err)
	}
	return nil
}

func parseGitHub(h http.Header, body []byte) (*Event, error) {
	ev := &Event{Forge: gantry.ForgeGitHub, Delivery: h.Get("X-GitHub-Delivery"), Name: h.Get("X-GitHub-Event")}
	switch ev.Name {
	case "ping":
		ev.Kind = kindPing
	case "push":
		var p ghPush
		if err := decodeBody(ev.Forge, body, &p); err != nil {
			return nil, err
		}
		ev.Kind, ev.Branch, ev.Commit, ev.Deleted = kindPush, branchOf(p.Ref), p.After, p.Deleted || zeroCommit(p.After)
		ev.Repo, ev.WebURL = p.Repository.FullName, p.Repository.HTMLURL
		if sec, err := strconv.ParseInt(string(p.Repository.PushedAt), 10, 64); err == nil && sec > 0 {
			ev.At = time.Unix(sec, 0)
		}
	case "pull_request":
		var p ghPull
		if err := decodeBody(ev.Forge, body, &p); err != nil {
			return nil, err
		}
		p.fill(ev, "synchronize")
	default:
		ev.Kind = kindNone
	}
	return ev, nil
}

// mrAction maps a forge's action word to ours; a close that merged is a merge.
func mrAction(action string, merged bool, words map[string]string) string {
	a, ok := words[action]
	if !ok {
		return mrOther
	}
	if a == mrClosed && merged {
		return mrMerged
	}
	return a
}

type glProject struct {
	ID                int    `json:"id"`
	PathWithNamespace string `json:"path_with_namespace"`
	WebURL            string `json:"web_url"`
}

type glPush struct {
	ObjectKind string    `json:"object_kind"`
	Ref        string    `json:"ref"`
	After      string    `json:"after"`
	Project    glProject `json:"project"`
}

type glMR struct {
	ObjectKind       string    `json:"object_kind"`
	Project          glProject `json:"project"`
	ObjectAttributes struct {
		IID          int    `json:"iid"`
		Action       string `json:"action"`
		SourceBranch string `json:"source_branch"`
		TargetBranch string `json:"target_branch"`
		UpdatedAt    string `json:"updated_at"`
		LastCommit   struct {
			ID string `json:"id"`
		} `json:"last_commit"`
	} `json:"object_attributes"`
}

// glTime reads GitLab's timestamps, which come as RFC 3339 or as
// "2013-12-03 17:23:34 UTC" depending on the event and version.
func glTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339, "2006-01-02 15:04:05 MST", "2006-01-02 15:04:05 -0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

func parseGitLab(h http.Header, body []byte) (*Event, error) {
	ev := &Event{Forge: gantry.ForgeGitLab, Delivery: h.Get("X-Gitlab-Event-UUID"), Name: h.Get("X-Gitlab-Event")}
	switch ev.Name {
	case "Push Hook":
		var p glPush
		if err := decodeBody(ev.Forge, body, &p); err != nil {
			return nil, err
		}
		ev.Kind, ev.Branch, ev.Commit, ev.Deleted = kindPush, branchOf(p.Ref), p.After, zeroCommit(p.After)
		ev.Repo, ev.WebURL = strconv.Itoa(p.Project.ID), p.Project.WebURL
	case "Merge Request Hook":
		var p glMR
		if err := decodeBody(ev.Forge, body, &p); err != nil {
			return nil, err
		}
		a := p.ObjectAttributes
		ev.Kind, ev.MR, ev.Branch, ev.Target, ev.Commit, ev.At = kindMR, a.IID, a.SourceBranch, a.TargetBranch, a.LastCommit.ID, glTime(a.UpdatedAt)
		ev.Repo, ev.WebURL = strconv.Itoa(p.Project.ID), p.Project.WebURL
		ev.MRAction = mrAction(a.Action, false, map[string]string{"open": mrOpened, "reopen": mrOpened, "update": mrUpdate, "close": mrClosed, "merge": mrMerged})
	default:
		ev.Kind = kindNone
	}
	return ev, nil
}

type giteaDelete struct {
	Ref        string `json:"ref"`
	RefType    string `json:"ref_type"`
	Repository ghRepo `json:"repository"`
}

func parseGitea(h http.Header, body []byte) (*Event, error) {
	ev := &Event{Forge: gantry.ForgeGitea, Delivery: header(h, "X-Gitea-Delivery", "X-Forgejo-Delivery"), Name: header(h, "X-Gitea-Event", "X-Forgejo-Event")}
	switch ev.Name {
	case "push":
		var p ghPush
		if err := decodeBody(ev.Forge, body, &p); err != nil {
			return nil, err
		}
		ev.Kind, ev.Branch, ev.Commit, ev.Deleted = kindPush, branchOf(p.Ref), p.After, zeroCommit(p.After)
		ev.Repo, ev.WebURL = p.Repository.FullName, p.Repository.HTMLURL
	case "delete":
		var p giteaDelete
		if err := decodeBody(ev.Forge, body, &p); err != nil {
			return nil, err
		}
		if p.RefType != "branch" {
			ev.Kind = kindNone
			return ev, nil
		}
		ev.Kind, ev.Branch, ev.Deleted = kindPush, p.Ref, true
		ev.Repo, ev.WebURL = p.Repository.FullName, p.Repository.HTMLURL
	case "pull_request":
		var p ghPull
		if err := decodeBody(ev.Forge, body, &p); err != nil {
			return nil, err
		}
		p.fill(ev, "synchronized") // Gitea's word for new commits
	default:
		ev.Kind = kindNone
	}
	return ev, nil
}
