package admin_test

import (
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// TestCanaryThroughTheSocket splits a real router's route through the
// admin API and reads its figures back.
func TestCanaryThroughTheSocket(t *testing.T) {
	front, c, ctx := realRouter(t)
	blue, green := MustBackend(t, "blue"), MustBackend(t, "green")
	route := gantry.Route{Name: "shop/test", Hosts: []string{"test.shop.localhost"},
		Health: gantry.HealthCheck{Interval: 50 * time.Millisecond, Timeout: time.Second}, DeployTimeout: 10 * time.Second}
	if _, err := c.Deploy(ctx, route, []string{blue}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CanaryStatus(ctx, "shop/test"); gantry.ErrorCode(err) != gantry.ENOTFOUND {
		t.Fatalf("status before a split: %v, want ENOTFOUND", err)
	}
	if err := c.SetCanary(ctx, "shop/test", gantry.CanarySplit{Candidate: []string{green}, Weight: 100, Step: 1}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, body := get(t, front.URL, "test.shop.localhost"); body != "green" {
			t.Fatalf("at 100%%: got %s", body)
		}
	}
	st, err := c.CanaryStatus(ctx, "shop/test")
	if err != nil || st.Candidate.Requests != 5 || st.Split.Weight != 100 || len(st.Candidate.LatencyMicros) != 5 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	if err := c.ClearCanary(ctx, "shop/test"); err != nil {
		t.Fatal(err)
	}
	if _, body := get(t, front.URL, "test.shop.localhost"); body != "blue" {
		t.Errorf("after clear: got %s", body)
	}
	if err := c.SetCanary(ctx, "shop/test", gantry.CanarySplit{Candidate: []string{green}, Weight: 101}); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("weight 101: %v, want EINVALID", err)
	}
}
