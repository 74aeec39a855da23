package delivery

import (
	"context"
	"time"

	"github.com/gantry-dev/gantry"
)

// Lookahead is how far past a period's end the Service reads, to learn
// what followed its last changes (a rollback, the next good state).
const Lookahead = 7 * 24 * time.Hour

// Service computes delivery metrics from a Store.
type Service struct {
	Store gantry.Store
}

var _ gantry.DeliveryService = (*Service)(nil)

// Delivery reads q's period of the app's deployments, the commit times of
// the releases they served and the app's environments, and computes the
// figures.
func (s *Service) Delivery(ctx context.Context, q gantry.DeliveryQuery) (*gantry.DeliveryReport, error) {
	if err := q.Validate(); err != nil {
		return nil, err
	}
	if _, err := s.Store.FindApp(ctx, q.App); err != nil {
		return nil, err
	}
	// Nothing is created in the future, so reading past now costs nothing.
	until := q.To.Add(Lookahead)
	ds, err := s.Store.ListDeploymentsIn(ctx, gantry.PeriodFilter{App: q.App, Env: q.Env, From: q.From, To: until, Steps: Steps})
	if err != nil {
		return nil, err
	}
	envs, err := s.Store.ListEnvironments(ctx, q.App)
	if err != nil {
		return nil, err
	}
	in := Input{App: q.App, From: q.From, To: q.To, Deployments: ds, Commits: map[string]time.Time{}, Production: q.Production}
	known := map[string]bool{}
	for _, e := range envs {
		known[e.Name] = true
		in.Envs = append(in.Envs, e.Name)
	}
	for _, d := range ds {
		known[d.Env] = true // deleted since (a preview), and deployed to in the period
	}
	for _, name := range append([]string{q.Env}, q.Production...) {
		if name != "" && !known[name] {
			return nil, gantry.Errorf(gantry.ENOTFOUND, "environment %q of app %q not found, and nothing was deployed to it in the period", name, q.App)
		}
	}
	if q.Env != "" {
		in.Envs = []string{q.Env}
	}
	for _, d := range ds {
		if _, seen := in.Commits[d.ReleaseID]; seen || d.ReleaseID == "" || d.State != gantry.DeploymentSucceeded {
			continue
		}
		r, err := s.Store.FindRelease(ctx, q.App, d.ReleaseID)
		if gantry.ErrorCode(err) == gantry.ENOTFOUND {
			in.Commits[d.ReleaseID] = time.Time{} // pruned or never recorded: no lead time
			continue
		} else if err != nil {
			return nil, err
		}
		in.Commits[d.ReleaseID] = r.CommittedAt
	}
	return Compute(in), nil
}
