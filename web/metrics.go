package web

import (
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

// metricsView is the delivery metrics page: the figures of one scope (the
// production environments, or the one environment chosen), a chart of its
// deployments per day and one of its lead time, and a row per environment.
type metricsView struct {
	Report *gantry.DeliveryReport
	Days   int
	Env    string
	Scope  *gantry.DeliveryFigures
	Label  string
	Envs   []string
	Deploy chart
	Lead   chart
}

// metricsPeriods are the periods the page offers, in days.
var metricsPeriods = []int{7, 30, 90}

func (d *Dashboard) metrics(w http.ResponseWriter, r *http.Request, rq *request) {
	app, env := r.PathValue("app"), r.URL.Query().Get("env")
	days := 30
	if s := r.URL.Query().Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 3660 {
			d.fail(w, r, rq, gantry.Errorf(gantry.EINVALID, "days %q: want a number of days from 1 to 3660", s))
			return
		}
		days = n
	}
	to := d.Now()
	q := url.Values{"from": {to.AddDate(0, 0, -days).UTC().Format(time.RFC3339)}, "to": {to.UTC().Format(time.RFC3339)}}
	var rep gantry.DeliveryReport
	if err := d.get(r.Context(), rq.id, appPath(app)+"/metrics?"+q.Encode(), &rep); err != nil {
		d.fail(w, r, rq, err)
		return
	}
	v := metricsView{Report: &rep, Days: days, Env: env, Scope: rep.Production}
	if v.Scope != nil {
		v.Label = "production (" + strings.Join(v.Scope.Envs, ", ") + ")"
	}
	for _, f := range rep.Environments {
		v.Envs = append(v.Envs, f.Envs[0])
		if f.Envs[0] == env || (v.Scope == nil && env == "") {
			v.Scope, v.Label = f, f.Envs[0]
		}
	}
	if env != "" && (v.Scope == nil || v.Label != env) {
		d.fail(w, r, rq, gantry.Errorf(gantry.ENOTFOUND, "app %q has no environment %q", app, env))
		return
	}
	if v.Scope != nil {
		v.Deploy = deploymentsChart(v.Scope.Days)
		v.Lead = leadTimeChart(v.Scope.Days)
	}
	p := rq.page("Delivery metrics of "+app, "", v)
	p.App, p.Nav = app, "metrics"
	d.render(w, http.StatusOK, "metrics.html", p)
}

// chart is a small bar chart drawn as inline SVG by the server: no script
// and nothing fetched from elsewhere.
type chart struct {
	Width, Height float64
	Bars          []bar
	Ticks         []tick
	YMax          string
	Empty         bool
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type tick struct {
	X    float64
	Text string
}

const (
	chartWidth  = 720
	chartHeight = 160
	chartTop    = 14 // room for the scale's label
	chartBottom = 18 // room for the dates
)

// frame lays out one slot per day and the date ticks below them.
func frame(days []gantry.DeliveryDay) (c chart, slot float64) {
	c = chart{Width: chartWidth, Height: chartHeight}
	if len(days) == 0 {
		c.Empty = true
		return c, 0
	}
	slot = chartWidth / float64(len(days))
	every := int(math.Ceil(float64(len(days)) / 8))
	for i, d := range days {
		if i%every == 0 {
			c.Ticks = append(c.Ticks, tick{X: float64(i)*slot + 2, Text: d.Date[5:]})
		}
	}
	return c, slot
}

// scale returns the bar height of v in a chart whose top is max.
func scale(v, max float64) float64 {
	if max <= 0 {
		return 0
	}
	return v / max * (chartHeight - chartTop - chartBottom)
}

// deploymentsChart stacks each day's failed changes on its good ones.
func deploymentsChart(days []gantry.DeliveryDay) chart {
	c, slot := frame(days)
	most := 0
	for _, d := range days {
		most = max(most, d.Deployments)
	}
	c.YMax = strconv.Itoa(most)
	c.Empty = most == 0
	base := float64(chartHeight - chartBottom)
	for i, d := range days {
		good := d.Deployments - d.Failures
		x, w := float64(i)*slot+slot*0.15, slot*0.7
		hGood, hBad := scale(float64(good), float64(most)), scale(float64(d.Failures), float64(most))
		if good > 0 {
			c.Bars = append(c.Bars, bar{X: x, Y: base - hGood, W: w, H: hGood, Class: "ok", Title: fmt.Sprintf("%s: %d succeeded", d.Date, good)})
		}
		if d.Failures > 0 {
			c.Bars = append(c.Bars, bar{X: x, Y: base - hGood - hBad, W: w, H: hBad, Class: "bad", Title: fmt.Sprintf("%s: %d failed", d.Date, d.Failures)})
		}
	}
	return c
}

// leadTimeChart draws each day's median lead time.
func leadTimeChart(days []gantry.DeliveryDay) chart {
	c, slot := frame(days)
	most := 0.0
	for _, d := range days {
		most = math.Max(most, d.LeadTimeMedian)
	}
	c.YMax = gantry.HumanSeconds(most)
	c.Empty = most == 0
	base := float64(chartHeight - chartBottom)
	for i, d := range days {
		if d.LeadTimeMedian <= 0 {
			continue
		}
		h := scale(d.LeadTimeMedian, most)
		c.Bars = append(c.Bars, bar{X: float64(i)*slot + slot*0.15, Y: base - h, W: slot * 0.7, H: h, Class: "lead",
			Title: fmt.Sprintf("%s: median lead time %s", d.Date, gantry.HumanSeconds(d.LeadTimeMedian))})
	}
	return c
}
