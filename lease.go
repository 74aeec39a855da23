package gantry

import (
	"context"
	"fmt"
	"time"
)

// Lease is the leadership of the control plane. Several servers may share
// one store: any of them answers reads, but only the holder of the lease
// runs deployments. Epoch is the fencing token: it grows by one each time
// another holder takes the lease, so a write carrying an older epoch comes
// from a deposed leader and the store refuses it.
type Lease struct {
	Holder string `json:"holder"`
	// Addr is where the holder's API answers, for the servers that forward
	// deployments to it.
	Addr    string    `json:"addr"`
	Epoch   int64     `json:"epoch"`
	Expires time.Time `json:"expires"`
}

// LeaseStore keeps the lease (part of Store).
type LeaseStore interface {
	// AcquireLease takes the lease for holder, or renews it when holder has
	// it, until ttl from now by the store's clock. A holder that takes it
	// from another (whose lease expired) gets the next epoch; a renewal
	// keeps the epoch. While another holder's lease runs it returns
	// ECONFLICT and that lease.
	AcquireLease(ctx context.Context, holder, addr string, ttl time.Duration) (*Lease, error)
	// FindLease returns the lease as it is (ENOTFOUND before the first).
	FindLease(ctx context.Context) (*Lease, error)
	// ReleaseLease ends holder's lease now, so that another server takes
	// it without waiting for it to expire; the epoch stays.
	ReleaseLease(ctx context.Context, holder string) error
}

type fenceKey struct{}

// WithFence returns ctx carrying epoch as the fencing token of the writes
// made with it: the store refuses such a write, inside the transaction that
// would make it, when the lease's epoch is no longer epoch.
func WithFence(ctx context.Context, epoch int64) context.Context {
	return context.WithValue(ctx, fenceKey{}, epoch)
}

// FenceFrom returns the fencing token ctx carries, if any.
func FenceFrom(ctx context.Context) (int64, bool) {
	e, ok := ctx.Value(fenceKey{}).(int64)
	return e, ok
}

// FencedError is the store's refusal of a write by a deposed leader.
func FencedError(token int64, cur *Lease) error {
	if cur == nil {
		return Errorf(ECONFLICT, "fenced: this server's lease (epoch %d) is gone; it no longer runs deployments", token)
	}
	return Errorf(ECONFLICT, "fenced: this server's lease (epoch %d) was taken by %s (epoch %d); it no longer runs deployments", token, cur.Holder, cur.Epoch)
}

// CheckFence is the stores' one rule for a fenced write: it passes when
// ctx carries no token, or the token is the lease's current epoch.
func CheckFence(ctx context.Context, cur *Lease) error {
	token, ok := FenceFrom(ctx)
	if !ok {
		return nil
	}
	if cur == nil || cur.Epoch != token {
		return FencedError(token, cur)
	}
	return nil
}

// LeaseHeldError is AcquireLease's refusal while another holder leads.
func LeaseHeldError(cur *Lease) error {
	return Errorf(ECONFLICT, "the lease is held by %s (epoch %d, at %s) until %s", cur.Holder, cur.Epoch, cur.Addr, cur.Expires.UTC().Format(time.RFC3339Nano))
}

// RouteEntry is one route of the route table as the control plane wants
// every router to serve it.
type RouteEntry struct {
	Route              Route     `json:"route"`
	Active             []string  `json:"active"`
	Previous           []string  `json:"previous,omitempty"`
	Preview            []string  `json:"preview,omitempty"`
	Paused             bool      `json:"paused,omitempty"`
	WritesOnly         bool      `json:"writes_only,omitempty"`
	Maintenance        bool      `json:"maintenance,omitempty"`
	MaintenanceMessage string    `json:"maintenance_message,omitempty"`
	SwitchedAt         time.Time `json:"switched_at,omitempty"`
	// Canary is the route's split while a canary runs (nil: none). The
	// final switch ends it in the table; each router keeps the previous
	// set for its sticky clients on its own.
	Canary *CanarySplit `json:"canary,omitempty"`
}

// RouteTable is every route the following routers serve, versioned: each
// change the leader makes is one new version.
type RouteTable struct {
	Version int64        `json:"version"`
	Routes  []RouteEntry `json:"routes"`
}

// Find returns the entry named name, or nil.
func (t *RouteTable) Find(name string) *RouteEntry {
	for i := range t.Routes {
		if t.Routes[i].Route.Name == name {
			return &t.Routes[i]
		}
	}
	return nil
}

// RouterReport is what a following router says it serves.
type RouterReport struct {
	Name string `json:"name"`
	// URL is where it serves traffic.
	URL string `json:"url,omitempty"`
	// Applied is the version of the route table it serves in full.
	Applied int64 `json:"applied"`
	// Failed is a version it could not apply, and Error why.
	Failed int64  `json:"failed,omitempty"`
	Error  string `json:"error,omitempty"`
	// Routes is the router's own view of its routes: health and traffic
	// figures of each target, as its Status says.
	Routes []RouteStatus `json:"routes,omitempty"`
	// Seen is when the store last heard from it (set by the store).
	Seen time.Time `json:"seen"`
}

// States of a router against the route table (RouterReport.State).
const (
	RouterUpToDate = "up-to-date"
	RouterBehind   = "behind"
	RouterFailed   = "failed"
)

// State says where a router stands against version, the route table's:
// failed (its last attempt at a newer version failed), behind, or up to
// date. The CLI and the dashboard say it alike.
func (r RouterReport) State(version int64) string {
	switch {
	case r.Failed > r.Applied:
		return RouterFailed
	case r.Applied < version:
		return RouterBehind
	}
	return RouterUpToDate
}

// String names a router and what it serves, for messages.
func (r RouterReport) String() string {
	s := fmt.Sprintf("router %s (applied version %d", r.Name, r.Applied)
	if r.Failed > 0 {
		s += fmt.Sprintf(", failed version %d: %s", r.Failed, r.Error)
	}
	return s + ")"
}

// RouteStore keeps the route table that following routers serve and what
// each of them reports (part of Store).
type RouteStore interface {
	// PutRoutes writes t as the next version of the route table and sets
	// t.Version. It is a fenced write (see WithFence).
	PutRoutes(ctx context.Context, t *RouteTable) error
	// FindRoutes returns the route table (version 0, no routes, before the
	// first PutRoutes).
	FindRoutes(ctx context.Context) (*RouteTable, error)
	// WaitRoutes returns the route table once its version is past after,
	// or ctx's error: a watch, woken by the write, not a poll.
	WaitRoutes(ctx context.Context, after int64) (*RouteTable, error)
	// PutRouterReport records what a router serves; Seen is set to now.
	PutRouterReport(ctx context.Context, r *RouterReport) error
	// ListRouterReports returns every router's last report, by name.
	ListRouterReports(ctx context.Context) ([]*RouterReport, error)
	// DeleteRouterReport forgets a router that is gone for good, so that
	// switches no longer wait for it (ENOTFOUND when none has that name).
	DeleteRouterReport(ctx context.Context, name string) error
}
