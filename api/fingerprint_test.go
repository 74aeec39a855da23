package api_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestStatusHidesFingerprints: an instance's fingerprint (Instance.Config)
// digests the environment's secret values with what a reader can see (the
// artifact, the manifest, the variables), so a guess at a weak secret could
// be checked against it: the API never returns it.
func TestStatusHidesFingerprints(t *testing.T) {
	c, db := newServer(t, &scriptedDeploys{})
	ctx := context.Background()
	if err := db.CreateApp(ctx, &gantry.App{Name: "shop", Repo: "/r"}); err != nil {
		t.Fatal(err)
	}
	const fp = "sha256:0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	env := &gantry.Environment{App: "shop", Name: "test", Active: gantry.SlotBlue, Slots: map[string]*gantry.Slot{
		gantry.SlotBlue: {Name: gantry.SlotBlue, ReleaseID: "1.0.0", Instances: []gantry.Instance{{Service: "web", Handle: "h1", Addr: "127.0.0.1:9", Config: fp}}},
	}}
	if err := db.PutEnvironment(ctx, env); err != nil {
		t.Fatal(err)
	}
	viewer := mustToken(t, db, "vera", gantry.RoleViewer)
	for _, path := range []string{"/v1/apps/shop/environments", "/v1/apps/shop/environments/test"} {
		req, _ := http.NewRequest(http.MethodGet, c.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+viewer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"h1"`) {
			t.Fatalf("GET %s: %s %s", path, resp.Status, b)
		}
		if strings.Contains(string(b), fp) || strings.Contains(string(b), `"config":`) {
			t.Errorf("GET %s returns the instance's fingerprint:\n%s", path, b)
		}
	}
	if got, err := db.FindEnvironment(ctx, "shop", "test"); err != nil || got.Slots[gantry.SlotBlue].Instances[0].Config != fp {
		t.Errorf("the stored fingerprint is gone after a read: %v", err)
	}
}
