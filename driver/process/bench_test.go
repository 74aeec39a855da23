package process_test

import (
	"context"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// BenchmarkStartServeStop measures one instance's cycle on an unpacked
// release: Start, first 200 on /up, Stop with SIGTERM.
func BenchmarkStartServeStop(b *testing.B) {
	d := MustDriver(b)
	warm := MustStart(b, d, appSpec("blue", "warm", 0, drivertest.FreePort(b))) // unpacks the release
	drivertest.WaitUp(b, warm)
	for i := 0; b.Loop(); i++ {
		inst, err := d.Start(context.Background(), appSpec("blue", "bench", i, drivertest.FreePort(b)))
		if err != nil {
			b.Fatal(err)
		}
		drivertest.WaitUp(b, inst)
		if err := d.Stop(context.Background(), inst, gantry.StopSpec{Timeout: 5 * time.Second}); err != nil {
			b.Fatal(err)
		}
	}
}
