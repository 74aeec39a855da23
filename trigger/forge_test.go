package trigger_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/forgetest"
	"github.com/gantry-dev/gantry/trigger"
)

const sha = "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c"

// TestParseDeliveries: each forge's documented payloads, signed by its
// scheme, are read as the same events.
func TestParseDeliveries(t *testing.T) {
	at := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		d        forgetest.Delivery
		want     trigger.Event
		wantTime bool
	}{
		{"github push", forgetest.Delivery{Forge: "github", Event: "push", Body: forgetest.Payload(t, "github_push", forgetest.Params{Branch: "releases/3.0", Commit: sha, At: at})},
			trigger.Event{Forge: "github", Kind: "push", Branch: "releases/3.0", Commit: sha, Repo: "octo-org/hello"}, true},
		{"github push deleting", forgetest.Delivery{Forge: "github", Event: "push", Body: forgetest.Payload(t, "github_push", forgetest.Params{Branch: "feature/x", Commit: strings.Repeat("0", 40), Deleted: true, At: at})},
			trigger.Event{Forge: "github", Kind: "push", Branch: "feature/x", Commit: strings.Repeat("0", 40), Deleted: true, Repo: "octo-org/hello"}, true},
		{"github pull request opened", forgetest.Delivery{Forge: "github", Event: "pull_request", Body: forgetest.Payload(t, "github_pull_request", forgetest.Params{Action: "opened", Number: 7, Branch: "feature/login", Target: "main", Commit: sha, At: at})},
			trigger.Event{Forge: "github", Kind: "merge_request", MR: 7, MRAction: "opened", Branch: "feature/login", Target: "main", Commit: sha, Repo: "octo-org/hello"}, true},
		{"github pull request synchronize", forgetest.Delivery{Forge: "github", Event: "pull_request", Body: forgetest.Payload(t, "github_pull_request", forgetest.Params{Action: "synchronize", Number: 7, Branch: "feature/login", Target: "main", Commit: sha, At: at})},
			trigger.Event{Forge: "github", Kind: "merge_request", MR: 7, MRAction: "updated", Branch: "feature/login", Target: "main", Commit: sha, Repo: "octo-org/hello"}, true},
		{"github pull request merged", forgetest.Delivery{Forge: "github", Event: "pull_request", Body: forgetest.Payload(t, "github_pull_request", forgetest.Params{Action: "closed", Merged: true, Number: 7, Branch: "feature/login", Target: "main", Commit: sha, At: at})},
			trigger.Event{Forge: "github", Kind: "merge_request", MR: 7, MRAction: "merged", Branch: "feature/login", Target: "main", Commit: sha, Repo: "octo-org/hello"}, true},
		{"github pull request labeled", forgetest.Delivery{Forge: "github", Event: "pull_request", Body: forgetest.Payload(t, "github_pull_request", forgetest.Params{Action: "labeled", Number: 7, Branch: "feature/login", Target: "main", Commit: sha, At: at})},
			trigger.Event{Forge: "github", Kind: "merge_request", MR: 7, MRAction: "other", Branch: "feature/login", Target: "main", Commit: sha, Repo: "octo-org/hello"}, true},
		{"gitlab push", forgetest.Delivery{Forge: "gitlab", Event: "Push Hook", Body: forgetest.Payload(t, "gitlab_push", forgetest.Params{Branch: "main", Commit: sha, At: at})},
			trigger.Event{Forge: "gitlab", Kind: "push", Branch: "main", Commit: sha, Repo: "15"}, false},
		{"gitlab merge request merged", forgetest.Delivery{Forge: "gitlab", Event: "Merge Request Hook", Body: forgetest.Payload(t, "gitlab_merge_request", forgetest.Params{Action: "merge", Number: 3, Branch: "feature/login", Target: "main", Commit: sha, At: at})},
			trigger.Event{Forge: "gitlab", Kind: "merge_request", MR: 3, MRAction: "merged", Branch: "feature/login", Target: "main", Commit: sha, Repo: "15"}, true},
		{"gitlab merge request update", forgetest.Delivery{Forge: "gitlab", Event: "Merge Request Hook", Body: forgetest.Payload(t, "gitlab_merge_request", forgetest.Params{Action: "update", Number: 3, Branch: "feature/login", Target: "main", Commit: sha, At: at})},
			trigger.Event{Forge: "gitlab", Kind: "merge_request", MR: 3, MRAction: "updated", Branch: "feature/login", Target: "main", Commit: sha, Repo: "15"}, true},
		{"gitea push", forgetest.Delivery{Forge: "gitea", Event: "push", Body: forgetest.Payload(t, "gitea_push", forgetest.Params{Branch: "main", Commit: sha, At: at})},
			trigger.Event{Forge: "gitea", Kind: "push", Branch: "main", Commit: sha, Repo: "gitea/hello"}, false},
		{"forgejo push", forgetest.Delivery{Forge: "forgejo", Event: "push", Body: forgetest.Payload(t, "gitea_push", forgetest.Params{Branch: "main", Commit: sha, At: at})},
			trigger.Event{Forge: "gitea", Kind: "push", Branch: "main", Commit: sha, Repo: "gitea/hello"}, false},
		{"gitea branch deleted", forgetest.Delivery{Forge: "gitea", Event: "delete", Body: forgetest.Payload(t, "gitea_delete", forgetest.Params{Branch: "feature/login"})},
			trigger.Event{Forge: "gitea", Kind: "push", Branch: "feature/login", Deleted: true, Repo: "gitea/hello"}, false},
		{"gitea pull request synchronized", forgetest.Delivery{Forge: "gitea", Event: "pull_request", Body: forgetest.Payload(t, "gitea_pull_request", forgetest.Params{Action: "synchronized", Number: 2, Branch: "feature/login", Target: "main", Commit: sha, At: at})},
			trigger.Event{Forge: "gitea", Kind: "merge_request", MR: 2, MRAction: "updated", Branch: "feature/login", Target: "main", Commit: sha, Repo: "gitea/hello"}, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.d.Secret, tc.d.ID = "s3cret", "delivery-1"
			forge := tc.d.Forge
			if forge == "forgejo" {
				forge = gantry.ForgeGitea
			}
			ev, err := trigger.Parse(forge, tc.d.Header(), tc.d.Body, "s3cret")
			if err != nil {
				t.Fatal(err)
			}
			if ev.Delivery != "delivery-1" {
				t.Errorf("Delivery = %q, want delivery-1", ev.Delivery)
			}
			if tc.wantTime && !ev.At.Equal(at) {
				t.Errorf("At = %v, want %v", ev.At, at)
			}
			if !tc.wantTime && !ev.At.IsZero() {
				t.Errorf("At = %v, want none: this payload carries no delivery time", ev.At)
			}
			got := *ev
			got.Delivery, got.At, got.WebURL, got.Name = "", time.Time{}, "", ""
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestSignatureRefused: a body signed with another secret, a body changed
// after signing, and a delivery without a signature are refused, by every
// forge's scheme.
func TestSignatureRefused(t *testing.T) {
	body := forgetest.Payload(t, "github_push", forgetest.Params{Branch: "main", Commit: sha})
	for _, forge := range []string{"github", "gitlab", "gitea"} {
		t.Run(forge, func(t *testing.T) {
			good := forgetest.Delivery{Forge: forge, Event: "push", ID: "1", Secret: "s3cret", Body: body}
			if forge == "gitlab" {
				good.Event = "Push Hook"
			}
			if _, err := trigger.Parse(forge, good.Header(), body, "s3cret"); err != nil {
				t.Fatalf("a good signature: %v", err)
			}
			bad := good
			bad.Sign = "other"
			if _, err := trigger.Parse(forge, bad.Header(), body, "s3cret"); gantry.ErrorCode(err) != gantry.EUNAUTHORIZED {
				t.Errorf("another secret: err %v, want EUNAUTHORIZED", err)
			}
			if forge != "gitlab" { // GitLab signs nothing: its token is the secret itself
				changed := append([]byte(nil), body...)
				changed[len(changed)-2] = ' '
				if _, err := trigger.Parse(forge, good.Header(), changed, "s3cret"); gantry.ErrorCode(err) != gantry.EUNAUTHORIZED {
					t.Errorf("a changed body: err %v, want EUNAUTHORIZED", err)
				}
			}
			if _, err := trigger.Parse(forge, http.Header{"X-GitHub-Event": {"push"}}, body, "s3cret"); gantry.ErrorCode(err) != gantry.EUNAUTHORIZED {
				t.Errorf("no signature: err %v, want EUNAUTHORIZED", err)
			}
		})
	}
}

func TestPreviewNames(t *testing.T) {
	for _, tc := range []struct {
		mr             int
		branch, want   string
		hostTpl, wantH string
	}{
		{7, "feature/login", "mr-7", "{branch}.preview.{app}.localhost", "feature-login.preview.shop.localhost"},
		{0, "feature/Login_Form", "br-feature-login-form", "{name}.pr.example", "br-feature-login-form.pr.example"},
		{0, "--weird//", "br-weird", "{branch}.{app}.localhost", "weird.shop.localhost"},
		{0, strings.Repeat("a", 80), "br-" + strings.Repeat("a", 60), "{branch}.x", strings.Repeat("a", 60) + ".x"},
	} {
		name := gantry.PreviewName(tc.mr, tc.branch)
		if name != tc.want {
			t.Errorf("PreviewName(%d, %q) = %q, want %q", tc.mr, tc.branch, name, tc.want)
		}
		if err := gantry.ValidName("environment", name); err != nil {
			t.Errorf("PreviewName(%d, %q) = %q: %v", tc.mr, tc.branch, name, err)
		}
		p := &gantry.PreviewSpec{Host: tc.hostTpl}
		if h := p.HostFor("shop", name, tc.branch); h != tc.wantH {
			t.Errorf("HostFor(%q) = %q, want %q", tc.branch, h, tc.wantH)
		}
	}
}
