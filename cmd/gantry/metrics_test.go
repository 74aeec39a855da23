package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
)

// TestMetricsFromRealDeployments deploys the sample app for real (test,
// promotions to prod, a rollback, a broken deploy), then reads the
// delivery metrics through the CLI, the API and Prometheus: every path
// reports what the journal holds.
func TestMetricsFromRealDeployments(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	start := time.Now()
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.0.0")
	mustCLI(t, s.APIURL, "promote", "test", "prod")
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.1.0")
	mustCLI(t, s.APIURL, "promote", "test", "prod")
	mustCLI(t, s.APIURL, "rollback", "prod")
	manifest, err := os.ReadFile(filepath.Join(repo, "gantry.yml"))
	if err != nil {
		t.Fatal(err)
	}
	commitChange(t, repo, "gantry.yml", strings.Replace(string(manifest), "run: bin/hello", "run: exit 3", 1), "broken")
	commitChange(t, repo, "VERSION", "1.2.0\n", "1.2.0")
	if _, _, code := runCLI(t, s.APIURL, "deploy", "test", "--ref", "main"); code != 1 {
		t.Fatalf("broken deploy: exit %d, want 1", code)
	}
	end := time.Now()

	var rep gantry.DeliveryReport
	mustJSON(t, mustCLI(t, s.APIURL, "metrics", "hello", "--since", "1d", "--json"), &rep)
	var prod, test *gantry.DeliveryFigures
	for _, f := range rep.Environments {
		switch f.Envs[0] {
		case "prod":
			prod = f
		case "test":
			test = f
		}
	}
	if prod == nil || test == nil || rep.Production == nil || !prod.Production || test.Production {
		t.Fatalf("want prod (production) and test; got %+v", rep)
	}
	if prod.Deployments != 2 || prod.Succeeded != 2 || prod.Failures.Total != 1 || prod.Failures.RolledBack != 1 || prod.ChangeFailureRate != 0.5 {
		t.Errorf("prod: got %+v, want 2 promotions, the second rolled back", prod)
	}
	if test.Deployments != 3 || test.Succeeded != 2 || test.Failures.Failed != 1 || test.Unrestored != 1 {
		t.Errorf("test: got %+v, want 3 deploys, the last failed and never restored", test)
	}
	// The demo commits its releases before the test starts, so each lead
	// time runs from that commit to a switch during the test.
	rels := promoted(t, s.APIURL)
	for _, r := range rels {
		if r.CommittedAt.IsZero() || r.CommittedAt.After(start) {
			t.Errorf("release %s: commit time %v, want one before the test's deploys", r.Version, r.CommittedAt)
		}
	}
	if lt := prod.LeadTime; lt.Count != 2 || lt.Max > end.Sub(oldest(rels)).Seconds() || lt.Median < start.Sub(newest(rels)).Seconds() {
		t.Errorf("prod lead time: got %+v, want 2 between %v and %v", lt, start.Sub(newest(rels)), end.Sub(oldest(rels)))
	}
	if ttr := prod.TimeToRestore; ttr.Count != 1 || ttr.Max <= 0 || ttr.Max > end.Sub(start).Seconds() {
		t.Errorf("prod time to restore: got %+v, want one, within the test's run", ttr)
	}

	t.Logf("gantry metrics:\n%s", mustCLI(t, s.APIURL, "metrics", "--app", "hello"))
	human := mustCLI(t, s.APIURL, "metrics", "--app", "hello", "--env", "prod")
	for _, want := range []string{"ENV", "prod *", "50%", "1 rolled back"} {
		if !strings.Contains(human, want) {
			t.Errorf("gantry metrics --env prod: want %q in\n%s", want, human)
		}
	}
	for _, bad := range [][]string{{"--since", "soon"}, {"--since", "1d", "--from", "2026-01-01"}, {"--from", "2030-01-01", "--to", "2029-01-01"},
		{"--from", "0001-01-01"}, {"--since", "100000d"}} {
		if _, errs, code := runCLI(t, s.APIURL, append([]string{"metrics", "hello"}, bad...)...); code != 2 {
			t.Errorf("gantry metrics %v: exit %d, want 2 (usage)\n%s", bad, code, errs)
		}
	}

	// A misspelt environment is an error, not a row of zeros; so is a
	// period of centuries asked of the API, which would be that many rows.
	if _, errs, code := runCLI(t, s.APIURL, "metrics", "hello", "--env", "prdo"); code != 1 || !strings.Contains(errs, `environment "prdo" of app "hello" not found`) {
		t.Errorf("gantry metrics --env prdo: exit %d, want 1 naming it\n%s", code, errs)
	}
	sock, _ := testSockets.Load(s.APIURL)
	if _, err := api.NewClient(s.APIURL, testerToken(t, sock.(string))).Delivery(t.Context(), gantry.DeliveryQuery{App: "hello", From: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), To: time.Now()}); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("metrics from the year 1000 through the API: got %v, want EINVALID", err)
	}

	// Prometheus: the gauges per app and environment, behind a token.
	get := func(token string) (int, string) {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, s.APIURL+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get(""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without a token: %d, want 401", code)
	}
	code, body := get(testerToken(t, "unix://"+s.SocketPath))
	for _, want := range []string{
		`gantry_delivery_deployments{app="hello",env="prod",production="true"} 2`,
		`gantry_delivery_change_failure_ratio{app="hello",env="prod",production="true"} 0.5`,
		`gantry_delivery_failures{app="hello",env="test",how="failed",production="false"} 1`,
		`gantry_delivery_window_seconds 2.592e+06`,
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Errorf("GET /metrics: %d, want %q in\n%s", code, want, body)
		}
	}
}

// promoted returns the releases that reached prod: 1.0.0 and 1.1.0.
func promoted(t *testing.T, server string) []*gantry.Release {
	t.Helper()
	var all, out []*gantry.Release
	mustJSON(t, mustCLI(t, server, "release", "list", "--app", "hello", "--json"), &all)
	for _, r := range all {
		if r.Version == "1.0.0" || r.Version == "1.1.0" {
			out = append(out, r)
		}
	}
	if len(out) != 2 {
		t.Fatalf("releases: got %d of 1.0.0 and 1.1.0, want 2", len(out))
	}
	return out
}

func oldest(rels []*gantry.Release) time.Time {
	o := rels[0].CommittedAt
	for _, r := range rels {
		if r.CommittedAt.Before(o) {
			o = r.CommittedAt
		}
	}
	return o
}

func newest(rels []*gantry.Release) time.Time {
	n := rels[0].CommittedAt
	for _, r := range rels {
		if r.CommittedAt.After(n) {
			n = r.CommittedAt
		}
	}
	return n
}
