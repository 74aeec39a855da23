package storetest

import (
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

var stepTests = []test{
	{"AppendFind", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		a := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		b := f.mustCreateDeployment("shop", "prod", gantry.DeploymentRunning)
		var want []gantry.Step
		// Interleaved: each deployment numbers its own steps from 1.
		for i, name := range []string{"start green", "health green", "switch", "stop blue"} {
			s := &gantry.Step{Name: name, State: gantry.StepStarted, Detail: "web x2", StartedAt: T0.Add(time.Duration(i) * time.Second)}
			mustOK(t, "AppendStep", f.s.AppendStep(f.ctx, a.ID, s))
			if s.Seq != i+1 {
				t.Errorf("AppendStep %q: got seq %d, want %d", name, s.Seq, i+1)
			}
			want = append(want, *s)
			other := &gantry.Step{Name: "other " + name, State: gantry.StepStarted}
			mustOK(t, "AppendStep", f.s.AppendStep(f.ctx, b.ID, other))
			if other.Seq != i+1 {
				t.Errorf("AppendStep to a second deployment: got seq %d, want %d", other.Seq, i+1)
			}
			if !other.StartedAt.Equal(T0) {
				t.Errorf("AppendStep without StartedAt: got %v, want the store's clock %v", other.StartedAt, T0)
			}
		}
		got, err := f.s.FindDeployment(f.ctx, a.ID)
		mustOK(t, "FindDeployment", err)
		sameJSON(t, "steps", got.Steps, want)
	}},
	{"Update", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		d := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		s1 := &gantry.Step{Name: "start", State: gantry.StepStarted, StartedAt: T0}
		s2 := &gantry.Step{Name: "switch", State: gantry.StepStarted, StartedAt: T0.Add(time.Second)}
		mustOK(t, "AppendStep", f.s.AppendStep(f.ctx, d.ID, s1))
		mustOK(t, "AppendStep", f.s.AppendStep(f.ctx, d.ID, s2))
		s1.State, s1.Detail, s1.EndedAt = gantry.StepDone, "2 instances healthy", T0.Add(500*time.Millisecond)
		mustOK(t, "UpdateStep", f.s.UpdateStep(f.ctx, d.ID, s1))
		got, err := f.s.FindDeployment(f.ctx, d.ID)
		mustOK(t, "FindDeployment", err)
		sameJSON(t, "steps after UpdateStep", got.Steps, []gantry.Step{*s1, *s2})
	}},
	{"NotFound", func(t *testing.T, f *fixture) {
		f.mustCreateApp("shop")
		d := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		s := &gantry.Step{Name: "start", State: gantry.StepStarted}
		wantCode(t, "AppendStep to a missing deployment", f.s.AppendStep(f.ctx, d.ID+1, s), gantry.ENOTFOUND)
		if s.Seq != 0 {
			t.Errorf("refused AppendStep: got seq %d, want it left 0", s.Seq)
		}
		wantCode(t, "UpdateStep of a missing step", f.s.UpdateStep(f.ctx, d.ID, &gantry.Step{Seq: 1, State: gantry.StepDone}), gantry.ENOTFOUND)
		mustOK(t, "AppendStep", f.s.AppendStep(f.ctx, d.ID, s))
		wantCode(t, "UpdateStep of another deployment's step", f.s.UpdateStep(f.ctx, d.ID+1, s), gantry.ENOTFOUND)
	}},
	{"ConcurrentAppend", func(t *testing.T, f *fixture) {
		// Several writers journaling into one deployment (the orchestrator
		// and, say, a hook runner): no error, no duplicate or lost seq.
		f.mustCreateApp("shop")
		d := f.mustCreateDeployment("shop", "test", gantry.DeploymentRunning)
		const writers, each = 4, 10
		seqs := make(chan int, writers*each)
		var wg sync.WaitGroup
		for range writers {
			wg.Go(func() {
				for range each {
					s := &gantry.Step{Name: "step", State: gantry.StepStarted}
					if err := f.s.AppendStep(f.ctx, d.ID, s); err != nil {
						t.Errorf("AppendStep: %v", err)
						return
					}
					seqs <- s.Seq
				}
			})
		}
		wg.Wait()
		close(seqs)
		seen := map[int]bool{}
		for s := range seqs {
			if seen[s] {
				t.Errorf("seq %d assigned twice", s)
			}
			seen[s] = true
		}
		for s := 1; s <= writers*each; s++ {
			if !seen[s] {
				t.Errorf("seq %d never assigned; want 1..%d", s, writers*each)
			}
		}
		got, err := f.s.FindDeployment(f.ctx, d.ID)
		mustOK(t, "FindDeployment", err)
		for i, s := range got.Steps {
			if s.Seq != i+1 {
				t.Fatalf("FindDeployment step %d: got seq %d, want steps ordered by seq", i, s.Seq)
			}
		}
	}},
}
