package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/api"
	"github.com/gantry-dev/gantry/internal/loadtest"
)

// canaryRelease commits a release of the sample whose test environment runs
// a canary with the given steps block and vars.
func canaryRelease(t *testing.T, repo, version, canary, vars string) {
	t.Helper()
	editManifest(t, repo, "canary for "+version, func(m string) string {
		// The test environment's block is the first one.
		head, rest, _ := strings.Cut(m, "  test:\n")
		_, tail, _ := strings.Cut(rest, "  prod:\n")
		env := "    hosts: [test.hello.localhost]\n    runtime: {driver: process}\n    strategy: canary\n    keep_warm: 10m\n" +
			"    canary: " + canary + "\n"
		if vars != "" {
			env += "    vars: " + vars + "\n"
		}
		return head + "  test:\n" + env + "  prod:\n" + tail
	})
	commitChange(t, repo, "VERSION", version+"\n", version)
}

// waitCanaryStep polls `gantry canary status --json` until the canary on
// test runs step n.
func waitCanaryStep(t *testing.T, api string, n int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		out, _, code := runCLI(t, api, "canary", "status", "test", "--json")
		var rep gantry.CanaryReport
		if code == 0 && json.Unmarshal([]byte(out), &rep) == nil && rep.Step >= n {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the canary never reached step %d", n)
}

// onlyInjected fails the test when the load saw a failure that is not one
// the release was told to make.
func onlyInjected(t *testing.T, l *loadtest.Load, what string) {
	t.Helper()
	for _, f := range l.Failures() {
		if !strings.Contains(f, "injected error") {
			t.Errorf("%s: a request failed that no release was told to fail: %s", what, f)
		}
	}
}

// TestCanaryJudgesRealReleasesUnderLoad runs canaries of the sample app on
// real processes behind the real router under real load: a release with
// 3% errors and one 30ms slower are aborted at their first step with the
// test named; an identical one passes every step, with testers reaching it
// at 0% and clients that stick to the release they were given across the
// switch; at 1 request/s steps are extended, never failed; and no request
// fails but those the releases were told to fail.
func TestCanaryJudgesRealReleasesUnderLoad(t *testing.T) {
	needTools(t)
	s := openServer(t, t.TempDir())
	repo := helloRepo(t)
	mustCLI(t, s.APIURL, "app", "add", "hello", "--repo", repo)
	mustCLI(t, s.APIURL, "deploy", "test", "--ref", "v1.1.0")
	const host = "test.hello.localhost"
	loadOpts := loadtest.Options{URL: s.RouterURL + "/", Host: host, Workers: 4, MaxDuration: 2 * time.Minute}
	firstStep := "{steps: [{weight: 25, duration: 3s}, {weight: 50, duration: 3s}], min_requests: 30}"

	for _, bad := range []struct{ name, version, vars, test, statistic string }{
		{"3% errors", "1.2.0", `{HELLO_ERROR_PERCENT: "3"}`, "error rate", "two-proportion z-test"},
		{"30ms slower", "1.2.1", `{HELLO_DELAY_MS: "30"}`, "latency", "Mann-Whitney U"},
	} {
		canaryRelease(t, repo, bad.version, firstStep, bad.vars)
		load := loadtest.Start(loadOpts)
		_, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
		load.Stop()
		if code != 1 || !strings.Contains(errs, "canary step 1 failed on "+bad.test) || !strings.Contains(errs, bad.statistic) {
			t.Fatalf("%s: exit %d, %q; want a failure at step 1 naming the %s", bad.name, code, errs, bad.statistic)
		}
		wantVersion(t, s.RouterURL, host, "1.1.0")
		d := lastDeployment(t, s, "test")
		if !journalHas(d, "canary-step", bad.statistic) || !journalHas(d, "canary-rollback", "traffic back on slot blue (1.1.0)") {
			t.Errorf("%s: the journal does not name the test and the rollback: %+v", bad.name, d.Steps)
		}
		onlyInjected(t, load, bad.name)
		t.Logf("%s: %d requests answered, %d failed (injected); %s", bad.name, load.OK.Load(), load.Failed.Load(), errs)
		if load.OK.Load() == 0 {
			t.Errorf("%s: no request succeeded", bad.name)
		}
	}

	// An identical release: a 0% step for testers, then two judged steps.
	canaryRelease(t, repo, "1.3.0", "{steps: [{weight: 0, duration: 2s}, {weight: 20, duration: 3s}, {weight: 50, duration: 2s}], match: {header: X-Canary, value: \"1\"}, min_requests: 30, sticky: 2m}", "")
	load := loadtest.Start(loadOpts)
	done := make(chan struct{})
	var deployErr string
	var deployCode int
	go func() {
		defer close(done)
		_, deployErr, deployCode = runCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	}()
	waitCanaryStep(t, s.APIURL, 1)
	for i := 0; i < 20; i++ {
		if v := versionWith(t, s.RouterURL, host, nil, "X-Canary", "1"); v != "1.3.0" {
			t.Fatalf("a tester at 0%% got %s, want the candidate 1.3.0", v)
		}
	}
	// Clients that arrive now are given the stable release, and keep it
	// through the steps and past the switch.
	var wg sync.WaitGroup
	var sticky atomic.Int64
	for c := 0; c < 3; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			jar, _ := cookiejar.New(nil)
			var seen []string
			after := 0
			for n := 0; n < 1000 && (len(seen) < 100 || after < 20); n++ {
				seen = append(seen, versionWith(t, s.RouterURL, host, jar, "", ""))
				select {
				case <-done:
					after++
				default:
				}
				time.Sleep(60 * time.Millisecond)
			}
			for i, v := range seen {
				if v != seen[0] {
					t.Errorf("a sticky client got %s at request %d of %d after %s", v, i, len(seen), seen[0])
					return
				}
			}
			if seen[0] != "1.1.0" || after < 20 {
				t.Errorf("a sticky client saw %s (%d requests after the switch), want 1.1.0 throughout", seen[0], after)
			}
			sticky.Add(int64(len(seen)))
		}()
	}
	<-done
	wg.Wait()
	load.Stop()
	if deployCode != 0 {
		t.Fatalf("identical release: exit %d: %s", deployCode, deployErr)
	}
	d := lastDeployment(t, s, "test")
	var verdicts []string
	for _, st := range d.Steps {
		if st.Name == "canary-step" {
			verdicts = append(verdicts, strings.SplitN(st.Detail, ":", 2)[0])
		}
	}
	if strings.Join(verdicts, ",") != "pass,pass,pass" {
		t.Errorf("identical release: verdicts %v, want three passes", verdicts)
	}
	if v := versionWith(t, s.RouterURL, host, nil, "", ""); v != "1.3.0" {
		t.Errorf("a new client after the switch got %s, want 1.3.0", v)
	}
	onlyInjected(t, load, "identical release")
	if load.Failed.Load() != 0 {
		t.Errorf("identical release: %d requests failed", load.Failed.Load())
	}
	t.Logf("identical release: %d requests under load, %d from sticky clients, none failed", load.OK.Load(), sticky.Load())

	// At one request a second no step can be judged: it is extended, and
	// the manifest says what then happens (here: go on).
	canaryRelease(t, repo, "1.4.0", "{steps: [{weight: 50, duration: 2s}], min_requests: 30, max_extensions: 2, on_inconclusive: pass}", "")
	stop := make(chan struct{})
	trickle := make(chan int, 1)
	go func() {
		n := 0
		defer func() { trickle <- n }()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := getVersion(s.RouterURL, host); err != nil {
					t.Errorf("a request at 1/s failed: %v", err)
				}
				n++
			}
		}
	}()
	_, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
	close(stop)
	n := <-trickle
	if code != 0 {
		t.Fatalf("low traffic: exit %d: %s", code, errs)
	}
	d = lastDeployment(t, s, "test")
	if !journalHas(d, "canary-step", "extended: not enough traffic yet") || journalHas(d, "canary-step", "fail") || !journalHas(d, "canary-step", "on_inconclusive: pass") {
		t.Errorf("low traffic: journal %+v, want extended steps and no failure", d.Steps)
	}
	t.Logf("low traffic: %d requests at 1/s, verdicts extended", n)

	// `gantry canary abort` ends a canary by hand: traffic back at once.
	canaryRelease(t, repo, "1.5.0", "{steps: [{weight: 30, duration: 10m}]}", "")
	aborted := make(chan string, 1)
	go func() {
		_, errs, code := runCLI(t, s.APIURL, "deploy", "test", "--ref", "main")
		aborted <- strconv.Itoa(code) + " " + errs
	}()
	waitCanaryStep(t, s.APIURL, 1)
	out := mustCLI(t, s.APIURL, "canary", "abort", "test")
	if res := <-aborted; !strings.HasPrefix(res, "1 ") || !strings.Contains(res, "failed on abort: aborted by tester") || !strings.Contains(out, "abort asked") {
		t.Errorf("abort: %s; deploy: %s", out, res)
	}
	wantVersion(t, s.RouterURL, host, "1.4.0")
	if _, _, code := runCLI(t, s.APIURL, "canary", "status", "test"); code != 1 {
		t.Errorf("status after the abort: exit %d, want 1 (no canary)", code)
	}
}

// versionWith fetches host's page with an optional cookie jar and header,
// and returns the version it shows; a failed request fails the test.
func versionWith(t *testing.T, routerURL, host string, jar http.CookieJar, header, value string) string {
	req, _ := http.NewRequest(http.MethodGet, routerURL+"/", nil)
	req.Host = host
	if header != "" {
		req.Header.Set(header, value)
	}
	c := &http.Client{Timeout: 10 * time.Second}
	if jar != nil {
		// The jar keys cookies by the router's address; the Host header
		// is what the router routes on.
		c.Jar = jar
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Errorf("GET %s: %v", host, err)
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	b := string(body)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: status %d: %.200s", host, resp.StatusCode, b)
		return ""
	}
	m := versionRE.FindStringSubmatch(b)
	if m == nil {
		t.Errorf("GET %s: no version in the page", host)
		return ""
	}
	return m[1]
}

// TestCanaryCrashWithFollowingRouters: a server on SQLite whose routes a
// separate router follows (--follow-routers) is killed in the middle of a
// canary step while the router splits the traffic. Started again, its
// recovery puts every request back on the stable release on that router
// and sets the candidate aside; the router can reach the restarted server
// while the recovery waits for it.
func TestCanaryCrashWithFollowingRouters(t *testing.T) {
	needTools(t)
	dir := t.TempDir()
	data, routerAddr := filepath.Join(dir, "data"), freeAddr(t)
	env := []string{"GANTRY_TEST_FOLLOW_ROUTERS=1", "GANTRY_TEST_PROXY_URL=http://" + routerAddr}
	repo := helloRepo(t)
	srv := startChild(t, data, "", "", env...)
	os.MkdirAll(filepath.Join(dir, "router"), 0o755)
	startBinProxy(t, gantryBinary(t), filepath.Join(dir, "router"), "--listen", routerAddr, "--follow", srv.API, "--follow-name", "edge-1")
	t.Cleanup(func() {
		stopInstancesWith(t, &Server{DataDir: data, Listen: "127.0.0.1:0", FollowRouters: true, Logger: newLogger(testWriter{t}, "text")})
	})
	const host = "test.hello.localhost"
	router := "http://" + routerAddr
	mustCLI(t, srv.API, "app", "add", "hello", "--repo", repo)
	mustCLI(t, srv.API, "deploy", "test", "--ref", "v1.0.0")
	canaryRelease(t, repo, "1.2.0", "{steps: [{weight: 50, duration: 10m}], sticky: 1m}", "")
	go runCLI(t, srv.API, "deploy", "test", "--ref", "main")
	waitCanaryStep(t, srv.API, 1)
	seen := map[string]int{}
	waitUntil(t, 20*time.Second, func() bool {
		v, err := getVersion(router, host)
		seen[v]++
		return err == nil && seen["1.2.0"] > 0 && seen["1.0.0"] > 0
	})
	srv.cmd.Process.Kill()
	srv.cmd.Wait()

	srv = startChild(t, data, "", "", env...)
	c := api.NewClient(srv.API, "")
	ds, err := c.ListDeployments(context.Background(), "hello", "test", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if d := ds[0]; d.State != gantry.DeploymentRecovered || strings.Contains(d.Error, "recovery failed") {
		t.Fatalf("deployment #%d after the restart: %s, %q; want recovered", d.ID, d.State, d.Error)
	}
	for i := 0; i < 50; i++ {
		if v, err := getVersion(router, host); err != nil || v != "1.0.0" {
			t.Fatalf("request %d after the recovery: %q, %v; want the stable 1.0.0", i, v, err)
		}
	}
	if st, _ := c.Environment(context.Background(), "hello", "test"); st != nil {
		for _, sl := range st.Slots {
			if sl != nil && sl.Version == "1.2.0" && len(sl.Instances) > 0 {
				t.Errorf("the candidate's slot %s still has instances after the recovery: %+v", sl.Name, sl.Instances)
			}
		}
	}
	mustCLI(t, srv.API, "deploy", "test", "--ref", "v1.1.0", "--strategy", "bluegreen")
	wantVersion(t, router, host, "1.1.0")
}
