package hook_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	gantry "github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/hook"
	"github.com/gantry-dev/gantry/manifest"
)

var allPhases = []string{
	hook.BeforeBuild, hook.AfterBuild, hook.BeforeDeploy, hook.AfterDeploy, hook.BeforeSwitch,
	hook.AfterSwitch, hook.BeforePromote, hook.AfterPromote, hook.BeforeRollback, hook.AfterRollback,
}

// TestPhasesMatchManifest: every phase constant is one the manifest accepts.
func TestPhasesMatchManifest(t *testing.T) {
	var b strings.Builder
	b.WriteString("app: shop\nservices: {web: {build: {artifacts: [bin/web]}, run: bin/web}}\nenvironments: {prod: }\nhooks:\n")
	for _, p := range allPhases {
		fmt.Fprintf(&b, "  %s: [{command: \"true\"}]\n", p)
	}
	m, err := manifest.Decode("phases.yml", []byte(b.String()))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got, want := len(m.Hooks), len(allPhases); got != want {
		t.Errorf("decoded %d phases, want %d", got, want)
	}
}

// TestPhase applies Before's rules to before_* phases and After's to
// after_* ones.
func TestPhase(t *testing.T) {
	hooks := map[string][]gantry.Hook{
		hook.BeforeSwitch: commands("exit 1", "echo unreachable"),
		hook.AfterSwitch:  commands("exit 1", "echo reached"),
	}
	r, _ := MustRunner(t)
	r.Attempts = 2
	hc := sampleContext()

	hc.Phase = hook.BeforeSwitch
	results, err := r.Phase(context.Background(), hooks, hc)
	if err == nil || len(results) != 1 || results[0].Attempts != 1 {
		t.Errorf("before_switch = %+v, %v; want one failed attempt and an error", results, err)
	}

	hc.Phase = hook.AfterSwitch
	results, err = r.Phase(context.Background(), hooks, hc)
	if err != nil || len(results) != 2 || results[0].Attempts != 2 || results[1].Output != "reached\n" {
		t.Errorf("after_switch = %+v, %v; want both hooks run, the first twice, and no error", results, err)
	}
	if got, want := hook.Summarize(results), "1 of 2 hooks failed: after_switch hook 1 (command) exit 1 failed after 2 attempt(s): exit status 1"; got != want {
		t.Errorf("Summarize = %q\nwant        %q", got, want)
	}

	hc.Phase = hook.AfterDeploy
	if results, err := r.Phase(context.Background(), hooks, hc); results != nil || err != nil {
		t.Errorf("a phase without hooks = %+v, %v; want nothing", results, err)
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		results []hook.Result
		want    string
	}{
		{[]hook.Result{{Phase: "after_build", OK: true}}, "1 hook ok"},
		{[]hook.Result{{Phase: "after_build", OK: true}, {Phase: "after_build", OK: true}}, "2 hooks ok"},
		{[]hook.Result{{Kind: "slack", Target: "https://hooks.slack.com/…", Attempts: 5, Status: 503, Error: "HTTP 503 Service Unavailable"}},
			"1 of 1 notification failed: slack https://hooks.slack.com/… failed after 5 attempt(s): HTTP 503 Service Unavailable"},
		// A failed check's output (masked by the runner) is what says why:
		// the journal line carries its end, on one line.
		{[]hook.Result{{Phase: "before_switch", Kind: "command", Target: "./smoke.sh", Attempts: 1, ExitCode: 1, Error: "exit status 1",
			Output: "GET /health\n  want 200, got 503 (token [secret])\n"}},
			"1 of 1 hook failed: before_switch hook 1 (command) ./smoke.sh failed after 1 attempt(s): exit status 1; output: GET /health | want 200, got 503 (token [secret])"},
		{[]hook.Result{{Phase: "after_switch", Kind: "command", Target: "x", Attempts: 5, Error: "exit status 1", Output: strings.Repeat("é", 400) + "end"}},
			"1 of 1 hook failed: after_switch hook 1 (command) x failed after 5 attempt(s): exit status 1; output: …" + strings.Repeat("é", 248) + "end"},
	} {
		if got := hook.Summarize(tc.results); got != tc.want {
			t.Errorf("Summarize = %q, want %q", got, tc.want)
		}
	}
}
