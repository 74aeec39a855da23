package api

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// DefaultMetricsDays is the period, in days back from now, of delivery
// metrics asked for without one (and of the Prometheus gauges).
const DefaultMetricsDays = 30

// deliveryQuery reads a delivery query from r: app from the path; env,
// from and to (RFC 3339; to defaults to now, from to DefaultMetricsDays
// before to) and production (comma-separated) from the query string.
func (s *Server) deliveryQuery(r *http.Request) (gantry.DeliveryQuery, error) {
	v := r.URL.Query()
	q := gantry.DeliveryQuery{App: r.PathValue("app"), Env: v.Get("env"), To: s.now()}
	for _, p := range []struct {
		name string
		dst  *time.Time
	}{{"to", &q.To}, {"from", &q.From}} {
		if raw := v.Get(p.name); raw != "" {
			t, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil {
				return q, gantry.Errorf(gantry.EINVALID, "%s %q: want an RFC 3339 time (2026-11-22T00:00:00Z)", p.name, raw)
			}
			*p.dst = t
		}
	}
	if q.From.IsZero() {
		q.From = q.To.AddDate(0, 0, -DefaultMetricsDays)
	}
	if p := v.Get("production"); p != "" {
		q.Production = strings.Split(p, ",")
	}
	return q, nil
}

func (s *Server) delivery(w http.ResponseWriter, r *http.Request) {
	if s.Delivery == nil {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "this server does not compute delivery metrics"))
		return
	}
	q, err := s.deliveryQuery(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	rep, err := s.Delivery.Delivery(r.Context(), q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// Delivery returns an app's delivery metrics over q's period.
func (c *Client) Delivery(ctx context.Context, q gantry.DeliveryQuery) (*gantry.DeliveryReport, error) {
	v := url.Values{}
	if q.Env != "" {
		v.Set("env", q.Env)
	}
	if !q.From.IsZero() {
		v.Set("from", q.From.UTC().Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("to", q.To.UTC().Format(time.RFC3339Nano))
	}
	if len(q.Production) > 0 {
		v.Set("production", strings.Join(q.Production, ","))
	}
	var out gantry.DeliveryReport
	return &out, c.do(ctx, http.MethodGet, appPath(q.App)+"/metrics?"+v.Encode(), nil, &out)
}

// prometheus serves every app's delivery metrics over the last days days
// (?days=N, default DefaultMetricsDays) as Prometheus gauges, one series
// per app and environment. Scraping needs a token that may read.
func (s *Server) prometheus(w http.ResponseWriter, r *http.Request) {
	if s.Delivery == nil {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "this server does not compute delivery metrics"))
		return
	}
	days, err := queryInt(r, "days", DefaultMetricsDays)
	if err == nil && (days < 1 || days > gantry.MaxDeliveryDays) {
		err = gantry.Errorf(gantry.EINVALID, "days %d: want 1 to %d", days, gantry.MaxDeliveryDays)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	apps, err := s.Store.ListApps(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	reg := prometheus.NewRegistry()
	g := newDeliveryGauges(reg)
	g.window.Set(float64(days) * 86400)
	to := s.now()
	for _, a := range apps {
		rep, err := s.Delivery.Delivery(r.Context(), gantry.DeliveryQuery{App: a.Name, From: to.AddDate(0, 0, -days), To: to})
		if err != nil {
			s.fail(w, r, err)
			return
		}
		for _, f := range rep.Environments {
			g.set(a.Name, f)
		}
	}
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// deliveryGauges are the delivery metrics as Prometheus sees them.
type deliveryGauges struct {
	window                                                    prometheus.Gauge
	deployments, perDay, failureRate, unrestored              *prometheus.GaugeVec
	failures                                                  *prometheus.GaugeVec
	leadMedian, leadP90, leadCount, restoreMedian, restoreP90 *prometheus.GaugeVec
}

func newDeliveryGauges(reg *prometheus.Registry) *deliveryGauges {
	labels := []string{"app", "env", "production"}
	vec := func(name, help string, extra ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "gantry", Subsystem: "delivery", Name: name, Help: help},
			append(append([]string{}, labels...), extra...))
		reg.MustRegister(v)
		return v
	}
	g := &deliveryGauges{
		window: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "gantry", Subsystem: "delivery", Name: "window_seconds",
			Help: "The period the delivery gauges cover, back from the scrape."}),
		deployments:   vec("deployments", "Changes (deploy, promote) that finished in the window."),
		perDay:        vec("deployments_per_day", "Deployment frequency: succeeded changes per day."),
		failureRate:   vec("change_failure_ratio", "Failed changes over changes (0 to 1)."),
		failures:      vec("failures", "Failed changes by how they failed.", "how"),
		unrestored:    vec("unrestored_failures", "Failures not restored by the end of the window."),
		leadMedian:    vec("lead_time_median_seconds", "Median time from a release's commit to it serving."),
		leadP90:       vec("lead_time_p90_seconds", "90th percentile of the lead time."),
		leadCount:     vec("lead_times", "Changes with a known lead time."),
		restoreMedian: vec("time_to_restore_median_seconds", "Median time from a failure to serving well again."),
		restoreP90:    vec("time_to_restore_p90_seconds", "90th percentile of the time to restore."),
	}
	reg.MustRegister(g.window)
	return g
}

func (g *deliveryGauges) set(app string, f *gantry.DeliveryFigures) {
	l := prometheus.Labels{"app": app, "env": strings.Join(f.Envs, ","), "production": strconv.FormatBool(f.Production)}
	g.deployments.With(l).Set(float64(f.Deployments))
	g.perDay.With(l).Set(f.PerDay)
	g.failureRate.With(l).Set(f.ChangeFailureRate)
	g.unrestored.With(l).Set(float64(f.Unrestored))
	g.leadMedian.With(l).Set(f.LeadTime.Median)
	g.leadP90.With(l).Set(f.LeadTime.P90)
	g.leadCount.With(l).Set(float64(f.LeadTime.Count))
	g.restoreMedian.With(l).Set(f.TimeToRestore.Median)
	g.restoreP90.With(l).Set(f.TimeToRestore.P90)
	for how, n := range map[string]int{"auto_rolled_back": f.Failures.AutoRolledBack, "failed": f.Failures.Failed, "rolled_back": f.Failures.RolledBack} {
		l := prometheus.Labels{"app": l["app"], "env": l["env"], "production": l["production"], "how": how}
		g.failures.With(l).Set(float64(n))
	}
}
