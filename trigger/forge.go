package trigger

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// Event kinds, after parsing.
const (
	kindPush = gantry.TriggerPush
	kindMR   = gantry.TriggerMergeRequest
	kindPing = "ping"
	kindNone = "ignored"
)

// Merge request actions, the same words whichever forge sent them.
const (
	mrOpened = "opened"  // opened or reopened
	mrUpdate = "updated" // new commits
	mrMerged = "merged"
	mrClosed = "closed" // closed without merging
	mrOther  = "other"  // labels, assignees, …: nothing to do
)

// Event is one forge event as the triggers see it.
type Event struct {
	Forge    string
	Kind     string
	Delivery string
	// At is when the forge says the event happened, where its payload says
	// it (zero otherwise): a delivery older than the replay window is
	// refused even once its id is forgotten.
	At time.Time
	// Repo is the forge's name of the repository for its API (owner/name,
	// or a GitLab project id), and WebURL its page, from which a forge's
	// API address is derived when none is configured.
	Repo   string
	WebURL string
	Branch string // pushed branch, or a merge request's source branch
	Target string // a merge request's target branch
	Commit string
	// Deleted: the push deleted Branch.
	Deleted  bool
	MR       int
	MRAction string
	// Name is the forge's own name for the event, for messages.
	Name string

	// source, for a delivery, is where its id is remembered (Service.finish
	// ends it); started says that dispatch gave it work in the background.
	source  string
	started bool
	// rec is what the hook's list of recent deliveries says of it.
	rec *gantry.HookDelivery
}

// header returns the first of names that h carries.
func header(h http.Header, names ...string) string {
	for _, n := range names {
		if v := h.Get(n); v != "" {
			return v
		}
	}
	return ""
}

// verify checks a delivery's signature by its forge's scheme: GitHub's
// X-Hub-Signature-256 "sha256=<hex HMAC-SHA256 of the body>", Gitea's and
// Forgejo's X-Gitea-Signature / X-Forgejo-Signature "<hex HMAC-SHA256>",
// GitLab's X-Gitlab-Token (the secret itself). Every comparison takes
// constant time.
func verify(forge string, h http.Header, body []byte, secret string) error {
	bad := func(what string) error {
		return gantry.Errorf(gantry.EUNAUTHORIZED, "%s delivery refused: %s", forge, what)
	}
	switch forge {
	case gantry.ForgeGitHub:
		sig := h.Get("X-Hub-Signature-256")
		hexSig, ok := strings.CutPrefix(sig, "sha256=")
		if !ok {
			return bad("no X-Hub-Signature-256 sha256= signature")
		}
		if !macEqual(hexSig, body, secret) {
			return bad("the signature does not match the body and the hook's secret")
		}
	case gantry.ForgeGitea:
		sig := header(h, "X-Gitea-Signature", "X-Forgejo-Signature")
		if sig == "" {
			return bad("no X-Gitea-Signature or X-Forgejo-Signature")
		}
		if !macEqual(sig, body, secret) {
			return bad("the signature does not match the body and the hook's secret")
		}
	case gantry.ForgeGitLab:
		tok := h.Get("X-Gitlab-Token")
		if tok == "" {
			return bad("no X-Gitlab-Token")
		}
		// Hash both sides first, so that the comparison's time does not
		// depend on the lengths either.
		a, b := sha256.Sum256([]byte(tok)), sha256.Sum256([]byte(secret))
		if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
			return bad("X-Gitlab-Token does not match the hook's secret")
		}
	default:
		return gantry.Errorf(gantry.EINVALID, "unknown forge %q: want github, gitlab or gitea", forge)
	}
	return nil
}

// macEqual reports whether hexSig is the HMAC-SHA256 of body under secret.
func macEqual(hexSig string, body []byte, secret string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(hexSig))
	if err != nil {
		return false
	}
	return hmac.Equal(got, hmacSum(body, secret))
}

// hmacSum is the HMAC-SHA256 of body under secret, which GitHub and Gitea sign with.
func hmacSum(body []byte, secret string) []byte {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return mac.Sum(nil)
}

// Sign returns the signature headers a forge would send with body, for
// `gantry ci`'s examples and for tests that deliver as a forge does.
func Sign(forge, secret string, body []byte) http.Header {
	h := http.Header{}
	sum := hex.EncodeToString(hmacSum(body, secret))
	switch forge {
	case gantry.ForgeGitHub:
		h.Set("X-Hub-Signature-256", "sha256="+sum)
	case gantry.ForgeGitea:
		h.Set("X-Gitea-Signature", sum)
	case gantry.ForgeGitLab:
		h.Set("X-Gitlab-Token", secret)
	}
	return h
}

// parse reads a verified delivery into an Event.
func parse(forge string, h http.Header, body []byte) (*Event, error) {
	switch forge {
	case gantry.ForgeGitHub:
		return parseGitHub(h, body)
	case gantry.ForgeGitLab:
		return parseGitLab(h, body)
	case gantry.ForgeGitea:
		return parseGitea(h, body)
	}
	return nil, gantry.Errorf(gantry.EINVALID, "unknown forge %q", forge)
}

// zeroCommit is the "after" of a push that deleted its branch.
func zeroCommit(sha string) bool {
	return sha != "" && strings.Trim(sha, "0") == ""
}

// branchOf returns the branch of a refs/heads/ ref, or "" for a tag.
func branchOf(ref string) string {
	b, ok := strings.CutPrefix(ref, "refs/heads/")
	if !ok {
		return ""
	}
	return b
}
