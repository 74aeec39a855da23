package proxy

import (
	"slices"
	"sync/atomic"
)

// targetSet is an immutable set of targets. Switching a route means storing a
// different *targetSet in an atomic pointer, so a request sees either the old
// set or the new one, never a mix.
type targetSet struct {
	targets []*target
	addrs   []string // sorted, for equality and reporting
	rr      atomic.Uint64
}

func newTargetSet(ts []*target) *targetSet {
	s := &targetSet{targets: ts}
	for _, t := range ts {
		s.addrs = append(s.addrs, t.addr)
	}
	slices.Sort(s.addrs)
	return s
}

func (s *targetSet) sameAddrs(addrs []string) bool {
	if s == nil {
		return len(addrs) == 0
	}
	sorted := slices.Clone(addrs)
	slices.Sort(sorted)
	return slices.Equal(s.addrs, sorted)
}

func (s *targetSet) addrList() []string {
	if s == nil {
		return nil
	}
	return slices.Clone(s.addrs)
}

func (s *targetSet) contains(t *target) bool {
	return s != nil && slices.Contains(s.targets, t)
}

// acquire picks a target from the set currently stored in p and counts the
// request on it. The re-check of p after counting closes the race with a
// switch: if the set changed in between, the drainer may already have looked
// at the old target's counter, so the request starts over on the new set.
func acquire(p *atomic.Pointer[targetSet], balance string, exclude *target) *target {
	for {
		s := p.Load()
		if s == nil {
			return nil
		}
		t := s.pick(balance, exclude)
		if t == nil {
			return nil
		}
		t.inflight.Add(1)
		if p.Load() == s {
			return t
		}
		t.done()
	}
}
