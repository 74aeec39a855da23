package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

var appTests = []test{
	{"CreateFind", func(t *testing.T, f *fixture) {
		// A zone other than UTC and nanoseconds: the instant must survive.
		at := time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.FixedZone("CET", 3600))
		want := &gantry.App{Name: "shop", Repo: "/srv/git/shop.git", CreatedAt: at}
		mustOK(t, "CreateApp", f.s.CreateApp(f.ctx, want))
		got, err := f.s.FindApp(f.ctx, "shop")
		mustOK(t, "FindApp", err)
		if got.Name != want.Name || got.Repo != want.Repo || !got.CreatedAt.Equal(at) {
			t.Errorf("FindApp: got %+v, want %+v", got, want)
		}
	}},
	{"CreatedAtDefault", func(t *testing.T, f *fixture) {
		a := &gantry.App{Name: "shop"}
		mustOK(t, "CreateApp", f.s.CreateApp(f.ctx, a))
		if !a.CreatedAt.Equal(T0) {
			t.Errorf("CreatedAt after CreateApp: got %v, want the store's clock %v", a.CreatedAt, T0)
		}
		got, err := f.s.FindApp(f.ctx, "shop")
		mustOK(t, "FindApp", err)
		if !got.CreatedAt.Equal(T0) {
			t.Errorf("stored CreatedAt: got %v, want %v", got.CreatedAt, T0)
		}
	}},
	{"Duplicate", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		err := f.s.CreateApp(f.ctx, &gantry.App{Name: "shop", Repo: "elsewhere"})
		wantCode(t, "second CreateApp", err, gantry.ECONFLICT)
		got, err := f.s.FindApp(f.ctx, "shop")
		mustOK(t, "FindApp", err)
		if got.Repo == "elsewhere" {
			t.Errorf("a refused CreateApp changed the app: repo %q", got.Repo)
		}
	}},
	{"NotFound", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		_, err := f.s.FindApp(f.ctx, "shops")
		wantCode(t, "FindApp of a missing app", err, gantry.ENOTFOUND)
	}},
	{"Invalid", func(t *testing.T, f *fixture) {
		wantCode(t, "CreateApp without a name", f.s.CreateApp(f.ctx, &gantry.App{}), gantry.EINVALID)
	}},
	{"List", func(t *testing.T, f *fixture) {
		apps, err := f.s.ListApps(f.ctx)
		mustOK(t, "ListApps", err)
		if len(apps) != 0 {
			t.Errorf("ListApps of an empty store: got %d apps, want 0", len(apps))
		}
		for _, name := range []string{"shop", "api", "web"} {
			f.mustCreateApp(name)
		}
		apps, err = f.s.ListApps(f.ctx)
		mustOK(t, "ListApps", err)
		var got []string
		for _, a := range apps {
			got = append(got, a.Name)
		}
		if want := []string{"api", "shop", "web"}; !slices.Equal(got, want) {
			t.Errorf("ListApps: got %q, want %q", got, want)
		}
	}},
	{"CanceledContext", func(t *testing.T, f *fixture) {
		ctx, cancel := context.WithCancel(f.ctx)
		cancel()
		if err := f.s.CreateApp(ctx, &gantry.App{Name: "shop"}); err == nil {
			t.Errorf("CreateApp with a canceled context: got no error")
		}
		_, err := f.s.FindApp(f.ctx, "shop")
		wantCode(t, "FindApp after a canceled CreateApp", err, gantry.ENOTFOUND)
	}},
}
