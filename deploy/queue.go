package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/gantry-dev/gantry"
)

// queuePoll is how often the head of a queue tries the lock again.
const queuePoll = 100 * time.Millisecond

// waiter is one queued request.
type waiter struct{ id int64 }

// acquire takes the environment's lock. Without wait it tries once, and
// also refuses when requests are queued (they came first). With wait it
// joins the environment's queue and tries whenever it is at the head.
func (o *Orchestrator) acquire(ctx context.Context, l *gantry.Lock, wait bool, progress gantry.Progress) error {
	key := l.App + "/" + l.Env
	if !wait {
		o.mu.Lock()
		queued := len(o.queues[key])
		o.mu.Unlock()
		if queued > 0 {
			return gantry.Errorf(gantry.ECONFLICT, "environment %q of app %q has %d queued requests; add --wait to queue behind them", l.Env, l.App, queued)
		}
		return o.Store.AcquireLock(ctx, l)
	}
	w := o.enqueue(key)
	defer o.dequeue(key, w)
	told := false
	for {
		if o.atHead(key, w) {
			l.Since = o.now()
			err := o.Store.AcquireLock(ctx, l)
			if err == nil {
				return nil
			}
			if gantry.ErrorCode(err) != gantry.ECONFLICT {
				return err
			}
			if !told && progress != nil {
				progress(gantry.Event{Step: "queue", State: "waiting", Message: gantry.ErrorMessage(err)})
				told = true
			}
		} else if !told && progress != nil {
			progress(gantry.Event{Step: "queue", State: "waiting", Message: fmt.Sprintf("queued behind %d earlier requests", o.position(key, w))})
			told = true
		}
		select {
		case <-ctx.Done():
			return gantry.Errorf(gantry.ECONFLICT, "gave up waiting for environment %q: %v", l.Env, ctx.Err())
		case <-time.After(queuePoll):
		}
	}
}

func (o *Orchestrator) enqueue(key string) *waiter {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.queues == nil {
		o.queues = map[string][]*waiter{}
	}
	o.nextWaiter++
	w := &waiter{id: o.nextWaiter}
	o.queues[key] = append(o.queues[key], w)
	return w
}

func (o *Orchestrator) dequeue(key string, w *waiter) {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queues[key]
	for i, x := range q {
		if x == w {
			o.queues[key] = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(o.queues[key]) == 0 {
		delete(o.queues, key)
	}
}

func (o *Orchestrator) atHead(key string, w *waiter) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := o.queues[key]
	return len(q) > 0 && q[0] == w
}

func (o *Orchestrator) position(key string, w *waiter) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	for i, x := range o.queues[key] {
		if x == w {
			return i
		}
	}
	return 0
}

// Queued returns how many requests wait for an environment's lock.
func (o *Orchestrator) Queued(app, env string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.queues[app+"/"+env])
}
