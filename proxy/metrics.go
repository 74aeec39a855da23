package proxy

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the router's Prometheus metrics. Label children are resolved
// when a route or target is created, not per request.
type Metrics struct {
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	inflight  *prometheus.GaugeVec
	switches  *prometheus.CounterVec
	drained   *prometheus.CounterVec
	cancelled *prometheus.CounterVec
	health    *prometheus.GaugeVec
}

// statusClassLabel is indexed by status/100; index 0 holds requests that got
// no valid status.
var statusClassLabel = [6]string{"error", "1xx", "2xx", "3xx", "4xx", "5xx"}

// NewMetrics creates the metrics and registers them on reg (if not nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_proxy_requests_total", Help: "Requests proxied, by route, target and status class.",
		}, []string{"route", "target", "class"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gantry_proxy_request_duration_seconds", Help: "Time to serve a proxied request, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"route"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gantry_proxy_in_flight_requests", Help: "Requests being proxied, by route.",
		}, []string{"route"}),
		switches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_proxy_switches_total", Help: "Target set switches (deploys and rollbacks), by route.",
		}, []string{"route"}),
		drained: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_proxy_drained_requests_total", Help: "Requests on switched-out targets that completed during the drain.",
		}, []string{"route"}),
		cancelled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_proxy_cancelled_requests_total", Help: "Requests on switched-out targets cancelled at the drain timeout.",
		}, []string{"route"}),
		health: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gantry_proxy_target_healthy", Help: "1 when the target passes its health check, else 0.",
		}, []string{"route", "target"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency, m.inflight, m.switches, m.drained, m.cancelled, m.health)
	}
	return m
}

func (m *Metrics) forgetTarget(route, addr string) {
	l := prometheus.Labels{"route": route, "target": addr}
	m.requests.DeletePartialMatch(l)
	m.health.DeletePartialMatch(l)
}

func (m *Metrics) forgetRoute(route string) {
	l := prometheus.Labels{"route": route}
	for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{
		m.requests, m.latency, m.inflight, m.switches, m.drained, m.cancelled, m.health,
	} {
		v.DeletePartialMatch(l)
	}
}
