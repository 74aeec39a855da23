package proxy

// Balance policies, as in gantry.Route.Balance.
const (
	BalanceLeastInFlight = "least_inflight"
	BalanceRoundRobin    = "round_robin"
)

// pick chooses a target, skipping exclude (a target that just refused a
// connection). Unhealthy targets are skipped while a healthy one exists;
// when none is healthy every target is tried, because refusing all traffic
// on a possibly wrong health verdict would be worse.
func (s *targetSet) pick(balance string, exclude *target) *target {
	n := len(s.targets)
	if n == 0 {
		return nil
	}
	if n == 1 {
		if t := s.targets[0]; t != exclude {
			return t
		}
		return nil
	}
	start := int(s.rr.Add(1) % uint64(n))
	if balance == BalanceRoundRobin {
		for i := 0; i < n; i++ {
			if t := s.targets[(start+i)%n]; t != exclude && t.healthy.Load() {
				return t
			}
		}
	} else {
		// Least in-flight; the rotating start spreads ties evenly.
		var best *target
		var bestN int64
		for i := 0; i < n; i++ {
			t := s.targets[(start+i)%n]
			if t == exclude || !t.healthy.Load() {
				continue
			}
			if c := t.inflight.Load(); best == nil || c < bestN {
				best, bestN = t, c
			}
		}
		if best != nil {
			return best
		}
	}
	for i := 0; i < n; i++ {
		if t := s.targets[(start+i)%n]; t != exclude {
			return t
		}
	}
	return nil
}
