package deploy_test

// The model-based test drives random sequences of operations (deploy,
// promote, rollback warm, cold and forced, db contract, clone, rename,
// approve, manual lock and unlock, the clock moving in and out of a freeze
// window, keep-warm reaping, a server crash at a journal step followed by a
// restart and Recover, deploy --pause-after and continue or abort) under
// random policies (promote_from, approvals, migrations_via_clone, freeze
// windows, a database or not, bluegreen, restart or maintenance on test,
// keep_warm 0 or not, with or without a worker) against memdriver,
// memrouter and fakedb, and checks after every step:
//
//	(a) no environment takes a release a gate forbids (the model knows what
//	    is allowed: what is active and verified on the source, the
//	    approvals given, each environment's history, freezes, clones), and
//	    no operation changes an environment it does not deploy to;
//	(b) what an environment's record says is active is what the router
//	    serves, the instances the records list are exactly those the
//	    driver runs for the app, and no route is left holding requests;
//	(c) no lock is left held, and no deployment left running, once an
//	    operation returned (but the model's manual locks and a paused
//	    deployment's);
//	(d) the database's schema is compatible with the release serving.
//
// go test ./deploy -run TestModel -v                 # the default count (or GANTRY_MODEL_N)
// go test ./deploy -run TestModel -model.n=5000      # more
// go test ./deploy -run TestModel -model.seed=S -model.n=1 -v   # one sequence, with its transcript
// -model.contract=false checks (b) and (c) only: (a) and (d) are the gates
// of the engine's new contract. -model.keepgoing runs every sequence and
// counts the failures.

import (
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	modelN        = flag.Int("model.n", envInt("GANTRY_MODEL_N", 300), "number of random sequences of TestModel")
	modelSteps    = flag.Int("model.steps", 10, "operations per sequence")
	modelSeed     = flag.Int64("model.seed", 0, "first sequence's seed (0: from the clock)")
	modelWorkers  = flag.Int("model.workers", 3, "sequences run at once, each worker with its own harness")
	modelContract = flag.Bool("model.contract", true, "check invariants (a) and (d), the gates of the engine's new contract")
	modelReal     = flag.Bool("model.realrouter", false, "run the sequences against the real router (package proxy) instead of memrouter")
	modelShow     = flag.Int("model.show", 5, "how many failed sequences to report in full")
	modelGoOn     = flag.Bool("model.keepgoing", false, "run every sequence even after one failed, and count the failures")
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func TestModel(t *testing.T) {
	seed := *modelSeed
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000_000
	}
	n, workers := *modelN, max(*modelWorkers, 1)
	start := time.Now()
	var next, done, ops atomic.Int64
	var failed atomic.Bool
	var mu sync.Mutex
	var failures []string
	nfail := 0
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var h *Harness
			for k := 0; *modelGoOn || !failed.Load(); k++ {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				// A fresh harness now and then: ReapStandby and Recover
				// read every app of the store.
				if k%25 == 0 {
					if h != nil {
						h.Close()
					}
					h = NewHarness(t, Options{RealRouter: *modelReal})
				}
				s := seed + i
				m := newModel(h, s, fmt.Sprintf("m%d-%d", w, i))
				err := m.run(*modelSteps)
				m.cleanup()
				ops.Add(int64(m.steps))
				done.Add(1)
				if err != nil {
					failed.Store(true)
					mu.Lock()
					nfail++
					failures = append(failures, fmt.Sprintf("sequence seed %d: %v\nreproduce: go test ./deploy -run TestModel -model.seed=%d -model.n=1 -v\ntranscript:\n%s",
						s, err, s, strings.Join(m.log, "\n")))
					mu.Unlock()
				}
				if testing.Verbose() && n == 1 {
					t.Logf("transcript of seed %d:\n%s", s, strings.Join(m.log, "\n"))
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("%d sequences (%d operations, seeds from %d) in %s with %d workers; contract gates checked: %t",
		done.Load(), ops.Load(), seed, took.Round(time.Millisecond), workers, *modelContract)
	if nfail > 0 {
		t.Errorf("%d of %d sequences broke an invariant; the first ones:", nfail, done.Load())
	}
	for i, f := range failures {
		if i == *modelShow {
			break
		}
		t.Error(f)
	}
}
