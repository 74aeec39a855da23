package gantry

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// DeliveryQuery asks for an app's delivery metrics over [From, To).
type DeliveryQuery struct {
	App string
	// Env narrows the figures to one environment ("" for all).
	Env      string
	From, To time.Time
	// Production names the environments whose figures add up to the app's
	// production figures; nil means DefaultProduction.
	Production []string
}

// MaxDeliveryDays bounds the period of a DeliveryQuery: each day is an
// entry of the report, so a period of centuries would make millions.
const MaxDeliveryDays = 3660

// Validate checks that q names an app and a period of one to
// MaxDeliveryDays days.
func (q DeliveryQuery) Validate() error {
	if q.App == "" {
		return Errorf(EINVALID, "delivery metrics need an app")
	}
	if !q.To.After(q.From) {
		return Errorf(EINVALID, "a period must end after it starts (from %s, to %s)",
			q.From.UTC().Format(time.RFC3339), q.To.UTC().Format(time.RFC3339))
	}
	if q.To.Sub(q.From) > MaxDeliveryDays*24*time.Hour {
		return Errorf(EINVALID, "a period of at most %d days: from %s to %s is longer", MaxDeliveryDays,
			q.From.UTC().Format(time.DateOnly), q.To.UTC().Format(time.DateOnly))
	}
	return nil
}

// DefaultProduction names the environments taken for production when a
// query names none.
var DefaultProduction = []string{"prod", "production"}

// DeliveryReport is an app's delivery over a period: per environment, and
// for its production environments together.
type DeliveryReport struct {
	App  string    `json:"app"`
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Production adds up the environments named production; nil when the
	// period has none of them.
	Production   *DeliveryFigures   `json:"production,omitempty"`
	Environments []*DeliveryFigures `json:"environments"`
}

// DeliveryFigures are the four delivery metrics of one environment (or of
// several added up) over the report's period. docs/metrics.md defines each.
type DeliveryFigures struct {
	// Envs names the environments the figures add up (one for a single
	// environment's).
	Envs       []string `json:"envs"`
	Production bool     `json:"production"`
	// Deployments counts the changes (deploy and promote) that finished in
	// the period; Succeeded those that reached traffic and finished well.
	Deployments int `json:"deployments"`
	Succeeded   int `json:"succeeded"`
	// PerDay is deployment frequency: succeeded changes per day.
	PerDay float64 `json:"per_day"`
	// Failures counts the changes that failed, by how.
	Failures DeliveryFailures `json:"failures"`
	// ChangeFailureRate is Failures.Total / Deployments (0 without any).
	ChangeFailureRate float64 `json:"change_failure_rate"`
	// LeadTime runs from a release's commit to it serving the environment.
	LeadTime DurationStats `json:"lead_time"`
	// TimeToRestore runs from a failure to the environment serving well
	// again; Unrestored counts failures not restored by the period's end.
	TimeToRestore DurationStats `json:"time_to_restore"`
	Unrestored    int           `json:"unrestored"`
	// Days is the period day by day (UTC), for charts.
	Days []DeliveryDay `json:"days"`
}

// DeliveryFailures counts failed changes by how they failed; each failed
// change counts once, under the first that applies.
type DeliveryFailures struct {
	Total int `json:"total"`
	// AutoRolledBack: the watch after the switch flipped traffic back.
	AutoRolledBack int `json:"auto_rolled_back"`
	// Failed: the deployment failed (or was interrupted and recovered).
	Failed int `json:"failed"`
	// RolledBack: it succeeded, and the next operation on the environment
	// was a rollback.
	RolledBack int `json:"rolled_back"`
}

// DurationStats summarises durations in seconds; zero values when Count is 0.
type DurationStats struct {
	Count  int     `json:"count"`
	Median float64 `json:"median_seconds"`
	Mean   float64 `json:"mean_seconds"`
	P90    float64 `json:"p90_seconds"`
	Max    float64 `json:"max_seconds"`
}

// DeliveryDay is one UTC day of an environment's delivery.
type DeliveryDay struct {
	Date        string `json:"date"` // YYYY-MM-DD
	Deployments int    `json:"deployments"`
	Failures    int    `json:"failures"`
	// LeadTimeMedian is the median lead time of the changes that started
	// serving that day, in seconds (0 when none did).
	LeadTimeMedian float64 `json:"lead_time_median_seconds"`
}

// DeliveryService computes delivery metrics from the journal.
type DeliveryService interface {
	Delivery(ctx context.Context, q DeliveryQuery) (*DeliveryReport, error)
}

// HumanSeconds writes a duration of the delivery figures the way a person
// says it: 2.5d, 2h05m, 4m30s, 1.5s, 35ms.
func HumanSeconds(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1fd", d.Hours()/24)
	case d >= time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	case d >= time.Minute:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	case d > 0 && d < time.Second:
		return strconv.FormatInt(max(d.Round(time.Millisecond).Milliseconds(), 1), 10) + "ms"
	}
	return strconv.FormatFloat(math.Round(d.Seconds()*10)/10, 'f', -1, 64) + "s"
}
