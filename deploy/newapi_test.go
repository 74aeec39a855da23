package deploy_test

// THE NEW API GUARD. The gate tests (gates_test.go) are written against
// fields the engine's new contract adds to the root package:
//
//	gantry.RollbackRequest.Force       bool   `json:"force"`
//	gantry.PromoteRequest.PauseAfter   *int   `json:"pause_after"`
//	gantry.CloneRequest.BreakGlass     string `json:"break_glass"`
//	gantry.RenameRequest.BreakGlass    string `json:"break_glass"`
//	gantry.Deployment.PauseAfter       *int   `json:"pause_after"`
//	gantry.Deployment.Only             string `json:"only"`
//	gantry.Deployment.GroupDone        *int   `json:"group_done"`
//
// So that this package compiles before those fields exist, the tests set
// and read them through JSON, by these helpers: a key the struct does not
// have is dropped on the way in and absent on the way out, and
// requireField reports the missing field as the reason of the failure.
// Once the fields exist the helpers keep working unchanged; the lead may
// replace them by plain field access and delete this file.

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// hasField says whether struct v has a field with JSON name key.
func hasField(v any, key string) bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	for i := range t.NumField() {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name == key {
			return true
		}
	}
	return false
}

// requireField fails the test (without stopping it) when v lacks the field.
func requireField(tb testing.TB, v any, key string) {
	tb.Helper()
	if !hasField(v, key) {
		tb.Errorf("%T has no field with json name %q yet: the new engine contract adds it", v, key)
	}
}

// withJSON returns v with the fields of extra set through JSON.
func withJSON[T any](tb testing.TB, v T, extra map[string]any) T {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	for k, x := range extra {
		requireField(tb, v, k)
		m[k] = x
	}
	b, err = json.Marshal(m)
	if err != nil {
		tb.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		tb.Fatal(err)
	}
	return out
}

// jsonField returns a field of v by its JSON name (nil when absent).
func jsonField(tb testing.TB, v any, key string) any {
	tb.Helper()
	requireField(tb, v, key)
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string]any{}
	if err := json.Unmarshal(b, &m); err != nil {
		tb.Fatal(err)
	}
	return m[key]
}

// forceRollback is RollbackRequest{…, Force: true}.
func forceRollback(tb testing.TB, req gantry.RollbackRequest) gantry.RollbackRequest {
	return withJSON(tb, req, map[string]any{"force": true})
}
