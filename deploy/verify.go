package deploy

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// verify runs the manifest's verify checks against the candidate through
// the router's preview host. Before the first switch of an environment the
// route does not exist yet, and the checks go to the first candidate
// instance directly.
//
// With held, the route holds every request (a self-migrating app's deploy),
// its preview host included: the checks then go to the instance directly.
func (o *Orchestrator) verify(ctx context.Context, rel *gantry.Release, env *gantry.Environment, cand *gantry.Slot, m *gantry.Manifest, held bool) (string, error) {
	main, _ := o.mainRoute(env, cand, m)
	route := main.route
	if len(main.targets) == 0 {
		main.targets = webTargets(cand, m)
	}
	t := checkTarget{base: "http://" + main.targets[0]}
	if held {
		// No preview through a held route: the instance answers directly.
	} else if err := o.setPreview(ctx, env, cand, m); err == nil && o.RouterURL != "" && len(route.PreviewHosts) > 0 {
		t.base, t.host = strings.TrimRight(o.RouterURL, "/"), route.PreviewHosts[0]
	} else if err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
		return "", fmt.Errorf("set preview: %w", err)
	}
	if t.host == "" {
		rts := o.routes(env, cand, m)
		t.direct = func(path string) string { return "http://" + directTarget(rts, main, path) }
	}
	return o.runChecks(ctx, rel, m, t)
}

// checkTarget is where verify checks reach a candidate.
type checkTarget struct {
	// base is the URL the checks are sent to; with host set, requests to
	// it carry that Host header (the router's preview host).
	base, host string
	// direct, when set, is the base URL of an HTTP check of path (an
	// instance of the service that serves it), for want of a preview host.
	direct func(path string) string
}

// runChecks runs the manifest's verify checks against t, in order, and
// stops at the first that fails. Commands run in the release's unpacked
// files, so that ./scripts/smoke.sh is the script of the release being
// verified.
func (o *Orchestrator) runChecks(ctx context.Context, rel *gantry.Release, m *gantry.Manifest, t checkTarget) (string, error) {
	files := newReleaseFiles(o.Artifacts, rel)
	defer files.Close()
	base, host := t.base, t.host
	var passed []string
	for i, c := range m.Verify {
		switch {
		case c.HTTP != nil:
			base := base
			if t.direct != nil {
				base = t.direct(c.HTTP.Path)
			}
			if err := o.verifyHTTP(ctx, base, host, c.HTTP); err != nil {
				return "", gantry.Errorf(gantry.EFAILED, "verify check %d failed: %v", i+1, err)
			}
			passed = append(passed, "GET "+c.HTTP.Path)
		case c.Command != "":
			url := base
			if host != "" {
				if u, err := neturl.Parse(base); err == nil {
					url = "http://" + host + ":" + u.Port()
				}
			}
			dir, err := files.Dir(ctx)
			if err != nil {
				if code := gantry.ErrorCode(err); code != gantry.EINTERNAL {
					return "", gantry.Errorf(code, "verify check %d (%s): %s", i+1, c.Command, gantry.ErrorMessage(err))
				}
				return "", fmt.Errorf("verify check %d (%s): %w", i+1, c.Command, err)
			}
			out, err := o.verifyCommand(ctx, dir, files.Home(), c.Command, url, base, host)
			if err != nil {
				return "", gantry.Errorf(gantry.EFAILED, "verify check %d (%s) failed: %v\n%s", i+1, c.Command, err, tail(out, 20))
			}
			passed = append(passed, c.Command+" → "+strings.ReplaceAll(tail(out, 5), "\n", " | "))
		}
	}
	return "passed: " + strings.Join(passed, "; "), nil
}

// directTarget is the candidate instance a check of path goes to when no
// preview host can take it: one of the service whose route, under the
// main route's hosts, has the longest prefix of path.
func directTarget(rts []routeTargets, main routeTargets, path string) string {
	best, bestLen := main.targets[0], -1
	for _, rt := range rts {
		if len(rt.targets) == 0 || strings.Join(rt.route.Hosts, ",") != strings.Join(main.route.Hosts, ",") {
			continue
		}
		p := rt.route.PathPrefix
		if p != "" && path != p && !strings.HasPrefix(path, strings.TrimSuffix(p, "/")+"/") {
			continue
		}
		if len(p) > bestLen {
			best, bestLen = rt.targets[0], len(p)
		}
	}
	return best
}

func (o *Orchestrator) verifyHTTP(ctx context.Context, base, host string, c *gantry.HTTPCheck) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+c.Path, nil)
	if err != nil {
		return err
	}
	if host != "" {
		req.Host = host
	}
	resp, err := o.httpClient().Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %s", c.Path, shortErr(err))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	want := c.Status
	if want == 0 {
		want = http.StatusOK
	}
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s: status %d, want %d", c.Path, resp.StatusCode, want)
	}
	if c.Contains != "" && !bytes.Contains(body, []byte(c.Contains)) {
		return fmt.Errorf("GET %s: body does not contain %q", c.Path, c.Contains)
	}
	return nil
}

// verifyCommand runs a verify command in dir, the release's files, with
// only the documented environment: gantry.CommandEnv's PATH, HOME (home,
// beside dir) and LANG, and the candidate's URL as GANTRY_URL (through the
// router), with GANTRY_ROUTER_URL and GANTRY_PREVIEW_HOST for clients that
// cannot resolve *.localhost. Nothing of the server's environment reaches it: a verify
// command is the app's code, and the server's credentials are not its.
func (o *Orchestrator) verifyCommand(ctx context.Context, dir, home, command, url, base, host string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = dir
	cmd.Env = append(gantry.CommandEnv(home), "GANTRY_URL="+url, "GANTRY_ROUTER_URL="+base, "GANTRY_PREVIEW_HOST="+host)
	// A background process left holding the output must not hold the
	// deployment past the command's own end.
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	m, merr := o.secretMasker(ctx)
	if merr != nil {
		return "(output withheld: the secrets to mask in it could not be read)", err
	}
	return m.Mask(string(out)), err
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
