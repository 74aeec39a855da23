package fleet

import (
	"context"
	"sync"

	"github.com/gantry-dev/gantry"
)

// Sources is a Source made of several control-plane servers (any of them
// answers): it keeps to the one that answered last and moves to the next
// when it fails, so a router follows on through the loss of a server.
type Sources struct {
	List []Source

	mu  sync.Mutex
	cur int
}

func (s *Sources) pick() (int, Source) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur, s.List[s.cur]
}

func (s *Sources) failed(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur == i {
		s.cur = (i + 1) % len(s.List)
	}
}

// WatchRoutes asks the current server, and on failure moves to the next.
func (s *Sources) WatchRoutes(ctx context.Context, after int64) (t *gantry.RouteTable, err error) {
	i, src := s.pick()
	t, err = src.WatchRoutes(ctx, after)
	if err != nil {
		s.failed(i)
	}
	return t, err
}

// ReportRouter reports to the current server, else to each other in turn.
func (s *Sources) ReportRouter(ctx context.Context, r *gantry.RouterReport) error {
	i, src := s.pick()
	err := src.ReportRouter(ctx, r)
	for n := 1; err != nil && n < len(s.List) && ctx.Err() == nil; n++ {
		err = s.List[(i+n)%len(s.List)].ReportRouter(ctx, r)
	}
	return err
}
