package sqlite

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// TestQueryPlans checks that the hot queries are answered from an index in
// the order they return, so their cost does not grow with history.
func TestQueryPlans(t *testing.T) {
	db := MustOpen(t, filepath.Join(t.TempDir(), "gantry.db"))
	type planCase struct {
		name  string
		query string
		args  []any
		want  string
	}
	tests := []planCase{
		{"find deployment", deploymentByID, []any{1}, "USING INTEGER PRIMARY KEY"},
		{"steps", stepsOfDeployment, []any{1}, "USING PRIMARY KEY (deployment_id=?)"},
		{"find environment", `SELECT doc FROM environments WHERE app = ? AND name = ?`, []any{"a", "b"}, "USING PRIMARY KEY"},
		{"find lock", `SELECT holder FROM locks WHERE app = ? AND env = ?`, []any{"a", "b"}, "USING PRIMARY KEY"},
		{"release by ID", releaseByID, []any{"a", "0a1b2c"}, "USING INDEX sqlite_autoindex_releases_1 (id=?)"},
		{"release by version", releaseByVersion, []any{"a", "1.0.0"}, "USING INDEX releases_app_version "},
		{"releases of an app", `SELECT id FROM releases WHERE app = ?` + newestFirst + ` LIMIT 50`,
			[]any{"a"}, "USING INDEX releases_app "},
		{"release by prefix", releaseByPrefix, []any{"0a1b", "0a1c", "a"}, "(id>? AND id<?)"},
	}
	for _, l := range []struct {
		f     gantry.DeploymentFilter
		index string
	}{
		{gantry.DeploymentFilter{App: "shop", Env: "test", Limit: 20}, "deployments_app_env "},
		{gantry.DeploymentFilter{App: "shop", Env: "test", BeforeID: 100}, "deployments_app_env "},
		{gantry.DeploymentFilter{App: "shop"}, "deployments_app "},
		{gantry.DeploymentFilter{App: "shop", Env: "test", State: gantry.DeploymentRunning}, "deployments_app_env_state "},
		{gantry.DeploymentFilter{State: gantry.DeploymentRunning}, "deployments_state "},
	} {
		q, args := listDeploymentsQuery(l.f)
		tests = append(tests, planCase{fmt.Sprintf("list %+v", l.f), q, args, "USING INDEX " + l.index})
	}
	// A period (delivery metrics) is read off one of the app's time
	// indexes, in their order, its steps by primary key.
	for _, f := range []gantry.PeriodFilter{
		{App: "shop", From: time.Unix(0, 0), To: time.Unix(3600, 0), Steps: []string{"switch", "auto-rollback"}},
		{App: "shop", Env: "prod", From: time.Unix(0, 0), To: time.Unix(3600, 0), Steps: []string{"switch"}},
	} {
		deps, steps, args, stepArgs := periodQueries(f)
		tests = append(tests, planCase{fmt.Sprintf("period %+v", f), deps, args, "_time (app=?"},
			planCase{fmt.Sprintf("steps of period %+v", f), steps, stepArgs, "_time (app=?"})
	}
	for _, tt := range tests {
		rows, err := db.read.QueryContext(t.Context(), "EXPLAIN QUERY PLAN "+tt.query, tt.args...)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		got := strings.Join(plan, "; ")
		if !strings.Contains(got, tt.want) || strings.Contains(got, "TEMP B-TREE") {
			t.Errorf("%s: got plan %q, want %q and no sort", tt.name, got, tt.want)
		}
	}
}
