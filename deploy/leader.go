package deploy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// DefaultLeaseTTL is how long a lease runs without a renewal: a leader that
// dies is replaced within about this long.
const DefaultLeaseTTL = 3 * time.Second

// Leader is this server's part in a control plane of several servers on one
// store. It takes the lease when no other server holds it, renews it every
// third of its TTL, and while it holds it runs OnLead (recovery, then the
// background work of a leader) with a context that carries the fencing
// token and ends when the lease is lost. Operations go through
// Orchestrator.execute, which asks Fence for the token: a server that does
// not lead runs none, and the writes of one deposed meanwhile are refused
// by the store.
type Leader struct {
	Store gantry.LeaseStore
	// Holder names this server (unique per process); Addr is where its API
	// answers, for the servers that forward deployments to it.
	Holder, Addr string
	TTL          time.Duration
	// OnLead runs in its own goroutine each time this server takes the
	// lease; ctx carries the token and ends when the lease is lost.
	OnLead func(ctx context.Context)
	Logger *slog.Logger

	mu      sync.Mutex
	epoch   int64
	valid   time.Time // the lease surely runs until then (renewal start + TTL)
	current *gantry.Lease
	stop    context.CancelFunc
	led     sync.WaitGroup
}

func (l *Leader) ttl() time.Duration {
	if l.TTL > 0 {
		return l.TTL
	}
	return DefaultLeaseTTL
}

// Run takes and renews the lease until ctx ends, then gives it up so that
// another server takes over at once.
func (l *Leader) Run(ctx context.Context) {
	t := time.NewTicker(l.ttl() / 3)
	defer t.Stop()
	for {
		l.Try(ctx)
		select {
		case <-ctx.Done():
			l.resign()
			return
		case <-t.C:
		}
	}
}

// Try takes or renews the lease once, and starts or ends leading.
func (l *Leader) Try(ctx context.Context) {
	start := time.Now()
	actx, cancel := context.WithTimeout(ctx, l.ttl()/3)
	lease, err := l.Store.AcquireLease(actx, l.Holder, l.Addr, l.ttl())
	cancel()
	l.mu.Lock()
	defer l.mu.Unlock()
	if lease != nil {
		l.current = lease
	}
	switch {
	case err == nil:
		l.valid = start.Add(l.ttl())
		if l.stop == nil || l.epoch != lease.Epoch {
			l.lead(lease)
		}
	case gantry.ErrorCode(err) == gantry.ECONFLICT:
		if l.stop != nil {
			l.logger().Warn("lost the lease", "leader", lease.Holder, "epoch", lease.Epoch)
			l.endLocked()
		}
	default:
		// The store did not answer: the lease may run out meanwhile, after
		// which another server may take it. Stop leading before then.
		l.logger().Error("renew the lease", "error", err)
		if l.stop != nil && time.Now().After(l.valid) {
			l.endLocked()
		}
	}
}

func (l *Leader) lead(lease *gantry.Lease) {
	l.endLocked()
	l.epoch = lease.Epoch
	ctx, cancel := context.WithCancel(gantry.WithFence(context.Background(), lease.Epoch))
	l.stop = cancel
	l.logger().Info("leading", "holder", l.Holder, "epoch", lease.Epoch)
	if l.OnLead != nil {
		l.led.Add(1)
		go func() {
			defer l.led.Done()
			l.OnLead(ctx)
		}()
	}
}

func (l *Leader) endLocked() {
	if l.stop != nil {
		l.stop()
		l.stop = nil
	}
}

// resign ends leading, waits for OnLead to return and releases the lease.
func (l *Leader) resign() {
	l.mu.Lock()
	was := l.stop != nil
	l.endLocked()
	l.mu.Unlock()
	l.led.Wait()
	if was {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := l.Store.ReleaseLease(ctx, l.Holder); err != nil {
			l.logger().Warn("release the lease", "error", err)
		}
	}
}

// Fence returns the token of this server's lease, and false when it does
// not hold one that surely still runs.
func (l *Leader) Fence() (int64, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.epoch, l.stop != nil && time.Now().Before(l.valid)
}

// Leading reports whether this server holds the lease.
func (l *Leader) Leading() bool {
	_, ok := l.Fence()
	return ok
}

// Current returns the lease as this server last saw it (nil before).
func (l *Leader) Current() *gantry.Lease {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.current == nil {
		return nil
	}
	c := *l.current
	return &c
}

// NotLeaderError is an operation refused by a server that does not lead.
func (l *Leader) NotLeaderError() error {
	if c := l.Current(); c != nil && c.Holder != l.Holder {
		return gantry.Errorf(gantry.EUNAVAILABLE, "this server does not run deployments: the leader is %s at %s; send the request there", c.Holder, c.Addr)
	}
	return gantry.Errorf(gantry.EUNAVAILABLE, "no server holds the lease yet; retry in a few seconds")
}

func (l *Leader) logger() *slog.Logger {
	if l.Logger != nil {
		return l.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// fence returns ctx carrying this server's fencing token, so that every
// write of the operation is refused once another server leads; it refuses
// the operation when this server does not lead.
func (o *Orchestrator) fence(ctx context.Context) (context.Context, error) {
	if o.Leader == nil {
		return ctx, nil
	}
	token, ok := o.Leader.Fence()
	if !ok {
		return ctx, o.Leader.NotLeaderError()
	}
	return gantry.WithFence(ctx, token), nil
}

// checkFence refuses a driver action of an operation whose server no
// longer leads: the store refuses such an operation's writes (and a
// journaled step does not act when its start cannot be written), but a
// cleanup that stops instances outside a step would otherwise still act —
// a deposed leader revived after a freeze stopped the instances the new
// leader had switched traffic to. Without a token (one server) it passes.
func (o *Orchestrator) checkFence(ctx context.Context) error {
	if _, ok := gantry.FenceFrom(ctx); !ok || o.Leader == nil {
		return nil
	}
	cur, err := o.Leader.Store.FindLease(ctx)
	if err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
		return err
	}
	return gantry.CheckFence(ctx, cur)
}

// runningHere reports whether this process runs deployment id: recovery
// after taking the lease must not close a deployment that still runs.
func (o *Orchestrator) runningHere(id int64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.running[id]
	return ok
}

// interruptedBy says, in a recovered deployment's error, what interrupted
// it: a restart of the one server, or the loss of the server that ran it
// when another took the lease.
func (o *Orchestrator) interruptedBy() string {
	if o.Leader == nil {
		return "interrupted by a server restart"
	}
	return "interrupted: the server running it stopped, and " + o.Leader.Holder + " took over"
}
