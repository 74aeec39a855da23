package proxy

import (
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gantry-dev/gantry"
)

// sampleSize bounds a side's latency sample per step. A rank test on a few
// thousand values resolves a shift of a few percent, and the sample stays
// small enough to send over the admin API at every poll.
const sampleSize = 4096

// laneFigures are one side's figures over one canary step: counts, and a
// uniform sample of latencies (reservoir sampling), which the rank test
// needs where the watch's power-of-two histogram would be too coarse.
type laneFigures struct {
	requests atomic.Int64
	errors   atomic.Int64

	mu     sync.Mutex
	seen   int64
	sample []int64 // microseconds
}

// record counts a finished request (an aborted one as statusWriter.finalCode
// says).
func (f *laneFigures) record(sw *statusWriter, start time.Time) {
	f.add(sw.finalCode(), time.Since(start))
}

func (f *laneFigures) add(code int, d time.Duration) {
	f.requests.Add(1)
	if code >= 500 && code < 600 {
		f.errors.Add(1)
	}
	us := max(d.Microseconds(), 0)
	f.mu.Lock()
	f.seen++
	if len(f.sample) < sampleSize {
		f.sample = append(f.sample, us)
	} else if j := rand.Int64N(f.seen); j < sampleSize {
		f.sample[j] = us
	}
	f.mu.Unlock()
}

// figures reports the side, with its latency sample.
func (f *laneFigures) figures() gantry.SlotFigures {
	f.mu.Lock()
	s := slices.Clone(f.sample)
	f.mu.Unlock()
	out := gantry.SlotFigures{Requests: f.requests.Load(), Errors5xx: f.errors.Load(), LatencyMicros: s}
	if len(s) > 0 {
		sorted := slices.Clone(s)
		slices.Sort(sorted)
		out.P50 = time.Duration(sampleQuantile(sorted, 0.50)) * time.Microsecond
		out.P99 = time.Duration(sampleQuantile(sorted, 0.99)) * time.Microsecond
	}
	return out
}

// sampleQuantile is the nearest-rank q-quantile of sorted values.
func sampleQuantile(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(q*float64(len(sorted)) + 0.999999)
	rank = max(1, min(rank, len(sorted)))
	return sorted[rank-1]
}
