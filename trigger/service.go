package trigger

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

var _ gantry.TriggerService = (*Service)(nil)

// DefaultReplayWindow is how long delivery ids are remembered, and how old
// a delivery whose payload carries its time may be.
const DefaultReplayWindow = 24 * time.Hour

// Service acts on an app's hooks. It receives each service it uses as a
// field of its own; Close waits for the work its deliveries started.
type Service struct {
	Store      gantry.Store
	Tokens     gantry.TokenStore
	Deliveries gantry.DeliveryStore
	Vault      Vault
	Releases   gantry.ReleaseService
	Deploys    gantry.DeployService
	Workflows  gantry.WorkflowService
	// Manifest reads the manifest of ref in repo (build.Builder.Manifest).
	Manifest func(ctx context.Context, repo, ref string) (string, []byte, *gantry.Manifest, error)
	// SecretFor resolves an environment's secret as its deployments see it.
	SecretFor func(app, env, name string) (string, bool)
	// PublicURL is the address at which the router serves host.
	PublicURL    func(host string) string
	HTTPClient   *http.Client
	ReplayWindow time.Duration
	Logger       *slog.Logger
	Now          func() time.Time

	// listed holds the apps whose repository the poller has listed once
	// (see Listed).
	listed sync.Map

	once   sync.Once
	base   context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// previews holds one lock per preview environment, so that the work
	// of two deliveries about one merge request (opened, then a quick
	// push) never overlaps: the second finds the first's preview.
	mu       sync.Mutex
	previews map[string]*sync.Mutex
	// inflight holds the deliveries whose work runs (source and id).
	inflight map[string]bool
	// recent holds each hook's latest deliveries, newest first (by app
	// and forge).
	recent map[string][]*gantry.HookDelivery
	// issued counts, per preview, the deliveries that started work on
	// it, in the order they arrived: work whose turn comes after a later
	// delivery's was issued is superseded (the later one does it), so an
	// older commit never lands over a newer one.
	issued map[string]int64
}

// issue numbers a delivery's work on app's preview name.
func (s *Service) issue(app, name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.issued == nil {
		s.issued = map[string]int64{}
	}
	s.issued[app+"/"+name]++
	return s.issued[app+"/"+name]
}

// superseded reports whether work seq on app's preview name was followed
// by a later delivery's.
func (s *Service) superseded(app, name string, seq int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issued[app+"/"+name] > seq
}

// lockPreview takes the lock of app's preview name and returns its release.
func (s *Service) lockPreview(app, name string) func() {
	s.mu.Lock()
	if s.previews == nil {
		s.previews = map[string]*sync.Mutex{}
	}
	l, ok := s.previews[app+"/"+name]
	if !ok {
		l = &sync.Mutex{}
		s.previews[app+"/"+name] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func (s *Service) window() time.Duration {
	if s.ReplayWindow > 0 {
		return s.ReplayWindow
	}
	return DefaultReplayWindow
}

// goRun runs ev's work fn in the background, under a context that Close
// cancels, and then tells ev's delivery whether it ran to its end.
func (s *Service) goRun(ev *Event, fn func(ctx context.Context)) {
	s.once.Do(func() { s.base, s.cancel = context.WithCancel(context.Background()) })
	ev.started = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		fn(s.base)
		if ev.source != "" {
			s.finish(ev.source, ev.Delivery, s.base.Err() == nil)
		}
	}()
}

// Wait waits for the work started so far.
func (s *Service) Wait() { s.wg.Wait() }

// Close cancels the work in progress and waits for it.
func (s *Service) Close() {
	s.once.Do(func() { s.base, s.cancel = context.WithCancel(context.Background()) })
	s.cancel()
	s.wg.Wait()
}

// Deliver verifies a forge's delivery, refuses a replay, and starts what
// the pushed commit's triggers say. The work runs in the background (a
// forge waits only seconds for an answer); the result says what it is.
func (s *Service) Deliver(ctx context.Context, app, forge string, h map[string][]string, body []byte) (res *gantry.DeliveryResult, err error) {
	if forge == gantry.ForgePoll {
		return nil, gantry.Errorf(gantry.EINVALID, "the poll hook takes no deliveries")
	}
	cfg, err := s.loadHook(ctx, app, forge)
	if err != nil {
		return nil, err
	}
	rec := &gantry.HookDelivery{At: s.now()}
	defer func() { s.noteDelivery(app, forge, rec, res, err) }()
	hdr := http.Header(h)
	if err := verify(forge, hdr, body, cfg.Secret); err != nil {
		return nil, err
	}
	ev, err := parse(forge, hdr, body)
	if err != nil {
		return nil, err
	}
	rec.Delivery, rec.Event, rec.Branch, rec.Commit, ev.rec = ev.Delivery, ev.Name, ev.Branch, ev.Commit, rec
	if ev.Kind == kindPing {
		return &gantry.DeliveryResult{Forge: forge, Delivery: ev.Delivery, Event: ev.Name, Action: "pong"}, nil
	}
	if ev.Delivery == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "%s delivery refused: it carries no delivery id, so a replay could not be told apart", forge)
	}
	now := s.now()
	if !ev.At.IsZero() && now.Sub(ev.At) > s.window() {
		return nil, gantry.Errorf(gantry.ECONFLICT, "%s delivery %s refused: its event is from %s, older than the %s replay window", forge, ev.Delivery, ev.At.UTC().Format(time.RFC3339), s.window())
	}
	source := forge + "/" + app
	if err := s.receive(ctx, source, ev.Delivery, now); err != nil {
		if gantry.ErrorCode(err) == gantry.ECONFLICT {
			return nil, gantry.Errorf(gantry.ECONFLICT, "%s delivery %s refused: it was received already (a replay)", forge, ev.Delivery)
		}
		return nil, err
	}
	ev.source = source
	id, err := s.identity(ctx, cfg)
	if err == nil {
		res, err = s.dispatch(ctx, app, id, cfg, ev)
	}
	if !ev.started {
		s.finish(source, ev.Delivery, true) // refused, or nothing to do: done with it
	}
	return res, err
}

// keepRecent is how many deliveries of each hook ListHooks shows.
const keepRecent = 10

// noteDelivery puts rec, answered by res or err, first in the list of
// its hook's recent deliveries.
func (s *Service) noteDelivery(app, forge string, rec *gantry.HookDelivery, res *gantry.DeliveryResult, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		rec.Answer, rec.Refused = gantry.ErrorMessage(err), true
	} else if res != nil {
		rec.Answer = res.Action
	}
	if s.recent == nil {
		s.recent = map[string][]*gantry.HookDelivery{}
	}
	key := app + "/" + forge
	s.recent[key] = append([]*gantry.HookDelivery{rec}, s.recent[key][:min(len(s.recent[key]), keepRecent-1)]...)
}

// noteOutcome records what ev's work said last (a commit status's state
// and description), for the hook's list of recent deliveries.
func (s *Service) noteOutcome(ev *Event, state, detail string) {
	if ev.rec == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ev.rec.Outcome, ev.rec.Detail = state, detail
}

// recentOf copies the recent deliveries of app's hook of forge.
func (s *Service) recentOf(app, forge string) []gantry.HookDelivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []gantry.HookDelivery
	for _, r := range s.recent[app+"/"+forge] {
		out = append(out, *r)
	}
	return out
}

// doneSource names where the deliveries of source whose work ended are
// remembered, beside those received.
func doneSource(source string) string { return "done/" + source }

// receive remembers delivery id of source, or returns ECONFLICT for a
// replay: one received before whose work runs now or ran to its end. A
// delivery received by a server that stopped before its work ended (the
// forge's redelivery of a push that was never deployed) is taken again;
// that retry counts as its end, so it is taken once more at most.
func (s *Service) receive(ctx context.Context, source, id string, now time.Time) error {
	forget := now.Add(-s.window())
	key := source + "\x00" + id
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.inflight[key] {
		return gantry.Errorf(gantry.ECONFLICT, "delivery %s of %s is being acted on", id, source)
	}
	err := s.Deliveries.RememberDelivery(ctx, source, id, now, forget)
	if gantry.ErrorCode(err) == gantry.ECONFLICT {
		if err = s.Deliveries.RememberDelivery(ctx, doneSource(source), id, now, forget); err == nil {
			s.logger().Warn("trigger redelivery", "source", source, "delivery", id,
				"detail", "received before and its work never ended (the server stopped): acting on it again")
		}
	}
	if err != nil {
		return err
	}
	if s.inflight == nil {
		s.inflight = map[string]bool{}
	}
	s.inflight[key] = true
	return nil
}

// finish ends delivery id of source: it is no longer in flight, and, when
// its work ran to its end, a redelivery of it is a replay even after a
// restart.
func (s *Service) finish(source, id string, ok bool) {
	s.mu.Lock()
	delete(s.inflight, source+"\x00"+id)
	s.mu.Unlock()
	if !ok {
		return
	}
	now := s.now()
	err := s.Deliveries.RememberDelivery(context.Background(), doneSource(source), id, now, now.Add(-s.window()))
	if err != nil && gantry.ErrorCode(err) != gantry.ECONFLICT {
		s.logger().Error("trigger: remember a delivery's end", "source", source, "delivery", id, "error", err)
	}
}

// dispatch decides what ev does, checks that the hook's token may do it,
// and starts it.
func (s *Service) dispatch(ctx context.Context, app string, id *gantry.Identity, cfg *hookConfig, ev *Event) (*gantry.DeliveryResult, error) {
	res := &gantry.DeliveryResult{Forge: ev.Forge, Delivery: ev.Delivery, Event: ev.Kind, Branch: ev.Branch, Commit: ev.Commit, Actor: id.Name}
	say := func(format string, args ...any) (*gantry.DeliveryResult, error) {
		res.Action = fmt.Sprintf(format, args...)
		s.logger().Info("trigger", "app", app, "forge", ev.Forge, "delivery", ev.Delivery, "event", ev.Kind, "branch", ev.Branch, "commit", ev.Commit, "action", res.Action, "actor", id.Name)
		return res, nil
	}
	switch {
	case ev.Kind == kindNone:
		return say("nothing: %s events are not acted on", ev.Name)
	case ev.Kind == kindPush && ev.Branch == "":
		return say("nothing: only branch pushes are acted on")
	case ev.Kind == kindPush && ev.Deleted, ev.Kind == kindMR && (ev.MRAction == mrMerged || ev.MRAction == mrClosed):
		name := gantry.PreviewName(ev.MR, ev.Branch)
		if !s.isPreview(ctx, app, name) {
			return say("nothing: no preview %s to delete", name)
		}
		if !id.Allows(gantry.PermAdmin, name) {
			return nil, id.Denied(gantry.PermAdmin, name)
		}
		seq := s.issue(app, name)
		s.goRun(ev, func(ctx context.Context) { s.deletePreview(ctx, app, name, id.Name, "its "+describe(ev), seq) })
		return say("delete preview %s", name)
	case ev.Kind == kindMR && ev.MRAction == mrOther:
		return say("nothing: merge request %d was %s", ev.MR, ev.Name)
	}
	a, err := s.Store.FindApp(ctx, app)
	if err != nil {
		return nil, err
	}
	_, _, m, err := s.Manifest(ctx, a.Repo, ev.Commit)
	if err != nil {
		return nil, err
	}
	branch := ev.Branch
	if ev.Kind == kindMR {
		branch = ev.Target
	}
	t := m.TriggerFor(ev.Kind, branch)
	if t == nil {
		return say("nothing: no trigger of %s matches a %s on %s", short(ev.Commit), ev.Kind, branch)
	}
	if t.Do != gantry.TriggerNothing && !id.Allows(gantry.PermBuild, "") {
		return nil, id.Denied(gantry.PermBuild, "")
	}
	switch t.Do {
	case gantry.TriggerNothing:
		return say("nothing: the trigger on %s says so", branch)
	case gantry.TriggerBuild:
		s.goRun(ev, func(ctx context.Context) { s.buildAndDeploy(ctx, app, id, cfg, ev, "") })
		return say("build %s", short(ev.Commit))
	case gantry.TriggerDeploy:
		if !id.Allows(gantry.PermDeploy, t.Env) {
			return nil, id.Denied(gantry.PermDeploy, t.Env)
		}
		s.goRun(ev, func(ctx context.Context) { s.buildAndDeploy(ctx, app, id, cfg, ev, t.Env) })
		return say("build %s and deploy it to %s", short(ev.Commit), t.Env)
	}
	// do: preview (the decoder allows it only with a previews section).
	name := gantry.PreviewName(ev.MR, ev.Branch)
	if !id.Allows(gantry.PermAdmin, name) {
		return nil, id.Denied(gantry.PermAdmin, name)
	}
	// What the clone route asks of a person: admin on the template and on
	// the new environment.
	if !id.Allows(gantry.PermAdmin, m.Previews.From) {
		return nil, id.Denied(gantry.PermAdmin, m.Previews.From)
	}
	host := m.Previews.HostFor(app, name, ev.Branch)
	seq := s.issue(app, name)
	s.goRun(ev, func(ctx context.Context) { s.preview(ctx, app, id, cfg, ev, name, m, seq) })
	return say("build %s and preview it as %s at %s", short(ev.Commit), name, s.url(host))
}

// buildAndDeploy builds ev's commit, then deploys it to env unless env is
// empty, as id, reporting each outcome to the forge.
func (s *Service) buildAndDeploy(ctx context.Context, app string, id *gantry.Identity, cfg *hookConfig, ev *Event, env string) {
	check := "gantry/build"
	if env != "" {
		check = "gantry/deploy-" + env
	}
	s.status(ctx, cfg, ev, check, statusPending, "", "building "+short(ev.Commit))
	rel, err := s.build(ctx, app, id, ev)
	if err != nil {
		s.status(ctx, cfg, ev, check, statusFailure, "", "build failed: "+gantry.ErrorMessage(err))
		return
	}
	if env == "" {
		s.status(ctx, cfg, ev, check, statusSuccess, "", "release "+rel.ID)
		return
	}
	d, err := s.Deploys.Deploy(ctx, gantry.DeployRequest{App: app, Env: env, Release: rel.ID, Actor: id.Name, Wait: true}, nil)
	if err != nil {
		s.logger().Error("trigger deploy", "app", app, "env", env, "release", rel.ID, "error", err)
		s.status(ctx, cfg, ev, check, statusFailure, "", fmt.Sprintf("deploy of %s to %s failed: %s", rel.ID, env, gantry.ErrorMessage(err)))
		return
	}
	s.logger().Info("trigger deployed", "app", app, "env", env, "release", rel.ID, "deployment", d.ID)
	s.status(ctx, cfg, ev, check, statusSuccess, s.envURL(ctx, app, env), fmt.Sprintf("%s serves %s", env, rel.ID))
}

// build builds ev's commit as id (or finds the release already built).
func (s *Service) build(ctx context.Context, app string, id *gantry.Identity, ev *Event) (*gantry.Release, error) {
	rel, err := s.Releases.BuildRelease(ctx, gantry.BuildRequest{App: app, Ref: ev.Commit, Actor: id.Name}, nil)
	if err != nil {
		s.logger().Error("trigger build", "app", app, "commit", ev.Commit, "error", err)
		return nil, err
	}
	s.logger().Info("trigger built", "app", app, "commit", ev.Commit, "release", rel.ID)
	return rel, nil
}

// envURL is the address of an environment's first host, or "".
func (s *Service) envURL(ctx context.Context, app, env string) string {
	e, err := s.Store.FindEnvironment(ctx, app, env)
	if err != nil || len(e.Spec.Hosts) == 0 {
		return ""
	}
	return s.url(e.Spec.Hosts[0])
}

func (s *Service) url(host string) string {
	if s.PublicURL != nil {
		return s.PublicURL(host)
	}
	return "http://" + host
}

func describe(ev *Event) string {
	switch {
	case ev.Kind == kindMR:
		return fmt.Sprintf("merge request %d was %s", ev.MR, ev.MRAction)
	case ev.Deleted:
		return fmt.Sprintf("branch %s was deleted", ev.Branch)
	}
	return ev.Kind
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
