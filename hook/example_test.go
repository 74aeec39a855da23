package hook_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	gantry "github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/hook"
)

// A CDN purge after the switch: the orchestrator runs a phase's hooks with
// the environment's vars and secrets, and journals the summary.
func ExampleRunner_Phase() {
	purgeAPI := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("purge API:", r.Method, r.URL.Path, "token", r.URL.Query().Get("token"))
	}))
	defer purgeAPI.Close()

	hooks := map[string][]gantry.Hook{ // a manifest's Hooks
		hook.AfterSwitch: {{Webhook: &gantry.Webhook{URL: purgeAPI.URL + "/zones/${CDN_ZONE}/purge?token=${CDN_TOKEN}", Method: "POST"}}},
	}
	r := &hook.Runner{}
	results, err := r.Phase(context.Background(), hooks, hook.Context{
		App: "shop", Env: "prod", Release: "rel-7f3a", Version: "1.4.0", Actor: "alice",
		Phase:   hook.AfterSwitch,
		Vars:    map[string]string{"CDN_ZONE": "z-42"},
		Secrets: map[string]string{"CDN_TOKEN": "tok-1234"},
	})
	fmt.Println(hook.Summarize(results), err)
	fmt.Println(results[0].Target == purgeAPI.URL+"/…")
	// Output:
	// purge API: POST /zones/z-42/purge token tok-1234
	// 1 hook ok <nil>
	// true
}
