package deploy_test

import (
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/proxy"
)

// newRealRouter returns the in-process router of package proxy, closed when
// the test ends. It serves no listener: the tests read its state.
func newRealRouter(tb testing.TB) gantry.Router {
	r := proxy.New(proxy.Config{HealthPath: "/.gantry/up"})
	tb.Cleanup(func() { r.Close() })
	return r
}
