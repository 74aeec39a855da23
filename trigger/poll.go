package trigger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// noHookRecheck is how soon the poller looks again at an app that has no
// poll hook.
const noHookRecheck = 5 * time.Second

// poller is the state of Poll: when each app is due, and the branch heads
// it saw last.
type poller struct {
	due   map[string]time.Time
	heads map[string]map[string]string
}

// Poll watches the repositories of apps that have a poll hook, for servers
// that webhooks cannot reach: every hook's interval it lists the branches
// (git ls-remote), and each branch that moved or went away acts as a push
// would, as the poll hook's token. The listing acted on is kept with the
// hook, so a restart neither redeploys nor misses what was pushed while
// the server was down; a hook's first listing is only remembered. It
// returns when ctx ends; tick is how often it looks whether an app is due.
func (s *Service) Poll(ctx context.Context, tick time.Duration) {
	p := &poller{due: map[string]time.Time{}, heads: map[string]map[string]string{}}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		s.pollOnce(ctx, p)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Service) pollOnce(ctx context.Context, p *poller) {
	apps, err := s.Store.ListApps(ctx)
	if err != nil {
		s.logger().Error("poll", "error", err)
		return
	}
	now := s.now()
	for _, a := range apps {
		if now.Before(p.due[a.Name]) {
			continue
		}
		cfg, err := s.loadHook(ctx, a.Name, gantry.ForgePoll)
		if err != nil {
			// No poll hook (yet: `app add --poll` stores the app before
			// its hook): look again soon, so a hook added now is not
			// left waiting for a minute.
			p.due[a.Name] = now.Add(noHookRecheck)
			delete(p.heads, a.Name)
			continue
		}
		p.due[a.Name] = now.Add(cfg.Poll)
		heads, err := lsRemote(ctx, a.Repo, cfg.Poll)
		if err != nil {
			s.logger().Error("poll", "app", a.Name, "repo", a.Repo, "error", err)
			continue
		}
		old, seen := p.heads[a.Name]
		if !seen && cfg.Heads != nil {
			old, seen = cfg.Heads, true // acted on before this start
		}
		p.heads[a.Name] = heads
		if !maps.Equal(cfg.Heads, heads) {
			s.keepHeads(ctx, a.Name, heads)
		}
		s.listed.Store(a.Name, true)
		if !seen {
			continue
		}
		for _, ev := range changes(old, heads) {
			id, err := s.identity(ctx, cfg)
			if err == nil {
				_, err = s.dispatch(ctx, a.Name, id, cfg, ev)
			}
			if err != nil {
				s.logger().Error("poll", "app", a.Name, "branch", ev.Branch, "commit", ev.Commit, "error", err)
			}
		}
	}
}

// keepHeads records heads with app's poll hook, read again just before:
// a hook removed meanwhile stays removed.
func (s *Service) keepHeads(ctx context.Context, app string, heads map[string]string) {
	cfg, err := s.loadHook(ctx, app, gantry.ForgePoll)
	if err != nil {
		return
	}
	cfg.Heads = heads
	b, err := json.Marshal(cfg)
	if err == nil {
		err = s.Vault.SetSecret(ctx, app, hooksEnv, gantry.ForgePoll, string(b))
	}
	if err != nil {
		s.logger().Error("poll: keep the listing", "app", app, "error", err)
	}
}

// changes returns a push event for every branch that moved or appeared
// from old to heads, and for every branch that went away.
func changes(old, heads map[string]string) []*Event {
	var out []*Event
	for _, b := range sortedKeys(heads) {
		if sha := heads[b]; old[b] != sha {
			out = append(out, &Event{Forge: gantry.ForgePoll, Kind: kindPush, Name: "push", Delivery: b + "@" + sha, Branch: b, Commit: sha})
		}
	}
	for _, b := range sortedKeys(old) {
		if _, ok := heads[b]; !ok {
			out = append(out, &Event{Forge: gantry.ForgePoll, Kind: kindPush, Name: "push", Delivery: b + "@deleted", Branch: b, Deleted: true})
		}
	}
	return out
}

// lsRemote lists repo's branches and their commits, within timeout.
func lsRemote(ctx context.Context, repo string, timeout time.Duration) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, max(timeout, 10*time.Second))
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "ls-remote", "--heads", "--", repo)
	cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, gantry.Errorf(gantry.EUNAVAILABLE, "git ls-remote %s: %s", repo, strings.TrimSpace(stderr.String()))
	}
	heads := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		sha, ref, ok := strings.Cut(sc.Text(), "\t")
		if b := branchOf(ref); ok && b != "" {
			heads[b] = sha
		}
	}
	return heads, nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Listed reports whether the poller has listed app's repository since the
// server started: branches that move from then on (or since the listing
// kept from before the start) act as pushes; what a hook's very first
// listing finds is only remembered.
func (s *Service) Listed(app string) bool {
	_, ok := s.listed.Load(app)
	return ok
}
