package web

import (
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

var funcs = template.FuncMap{
	"short": func(s string, n int) string {
		s = strings.TrimPrefix(s, "sha256:")
		if len(s) > n {
			return s[:n]
		}
		return s
	},
	"when": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05 UTC")
	},
	"until": func(t time.Time, now time.Time) string { return t.Sub(now).Round(100 * time.Millisecond).String() },
	"minus": func(a, b int64) int64 { return a - b },
	"ago": func(t time.Time, now time.Time) string {
		if t.IsZero() {
			return ""
		}
		return human(now.Sub(t)) + " ago"
	},
	"took": func(s gantry.Step, now time.Time) string {
		end := s.EndedAt
		if end.IsZero() {
			end = now
		}
		d := end.Sub(s.StartedAt)
		if d < time.Second {
			return fmt.Sprintf("%dms", d.Milliseconds())
		}
		return fmt.Sprintf("%.1fs", d.Seconds())
	},
	"total": func(dep *gantry.Deployment, now time.Time) string {
		end := dep.FinishedAt
		if end.IsZero() {
			end = now
		}
		return fmt.Sprintf("%.1fs", end.Sub(dep.CreatedAt).Seconds())
	},
	"join":    strings.Join,
	"seconds": gantry.HumanSeconds,
	"periods": func() []int { return metricsPeriods },
	"num":     func(x float64) string { return strconv.FormatFloat(math.Round(x*100)/100, 'f', -1, 64) },
	"sub":     func(a, b float64) float64 { return a - b },
	"half":    func(a float64) float64 { return a / 2 },
	"pct": func(x float64) string {
		return strconv.FormatFloat(math.Round(x*1000)/10, 'f', -1, 64) + "%"
	},
	"now": time.Now,
}

// human is a short duration: 45s, 12m, 3h, 2d.
func human(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

// parsePages parses every page with the layout; a broken template stops the
// program at start, not at the first visit.
func parsePages() map[string]*template.Template {
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		pages[base] = template.Must(template.New(base).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", n))
	}
	return pages
}
