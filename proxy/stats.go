package proxy

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// latencyBuckets is the size of a target's latency histogram: bucket i holds
// durations of [2^(i-1), 2^i) microseconds, the last one everything longer
// (about 18 minutes).
const latencyBuckets = 32

// targetStats are the figures the post-switch watch compares between the old
// and the new release. They are lifetime counters, so a reader takes the
// difference of two snapshots; recording them is a few atomic adds on the hot
// path, with no lock and no allocation.
type targetStats struct {
	requests  atomic.Int64
	errors5xx atomic.Int64
	latencyNs atomic.Int64
	latency   [latencyBuckets]atomic.Int64
}

func (s *targetStats) record(code int, d time.Duration) {
	s.requests.Add(1)
	if code >= 500 && code < 600 {
		s.errors5xx.Add(1)
	}
	if d < 0 {
		d = 0
	}
	s.latencyNs.Add(int64(d))
	s.latency[latencyBucket(d)].Add(1)
}

func latencyBucket(d time.Duration) int {
	return min(bits.Len64(uint64(d/time.Microsecond)), latencyBuckets-1)
}

// quantile estimates the q-quantile of the recorded latencies as the upper
// bound of the bucket that holds it, so it errs on the slow side by at most
// a factor of two. Zero when nothing was recorded.
func (s *targetStats) quantile(q float64) time.Duration {
	var counts [latencyBuckets]int64
	var total int64
	for i := range counts {
		counts[i] = s.latency[i].Load()
		total += counts[i]
	}
	if total == 0 {
		return 0
	}
	rank := int64(q*float64(total) + 0.999999)
	rank = max(1, min(rank, total))
	var seen int64
	for i, c := range counts {
		seen += c
		if seen >= rank {
			return time.Duration(uint64(1)<<i) * time.Microsecond
		}
	}
	return time.Duration(uint64(1)<<(latencyBuckets-1)) * time.Microsecond
}
