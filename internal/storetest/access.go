package storetest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
)

// AccessStore is what a store implements for access control, the audit
// trail and sealed secrets, beside gantry.Store.
type AccessStore interface {
	gantry.Store
	gantry.TokenStore
	gantry.AuditLog
	gantry.SecretStore
	gantry.DeliveryStore
}

// RunAccess runs the access-control part of the suite against the stores
// that open returns; each must implement AccessStore.
func RunAccess(t *testing.T, open Opener) {
	var n atomic.Int64
	for _, tc := range accessTests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, open, dbName(fmt.Sprintf("ac%03d_%s", n.Add(1), tc.name)))
			if _, ok := f.s.(AccessStore); !ok {
				t.Fatalf("%T does not implement storetest.AccessStore", f.s)
			}
			tc.fn(t, f)
		})
	}
}

func (f *fixture) access() AccessStore { return f.s.(AccessStore) }

var accessTests = []test{
	{"Tokens", func(t *testing.T, f *fixture) {
		s := f.access()
		want := &gantry.Token{Name: "ci", Role: gantry.RoleDeployer, Envs: []string{"test"}, Hash: gantry.HashToken("secret"), CreatedBy: "alice"}
		mustOK(t, "CreateToken", s.CreateToken(f.ctx, want))
		if !want.CreatedAt.Equal(T0) {
			t.Errorf("CreatedAt: got %v, want the store's clock %v", want.CreatedAt, T0)
		}
		wantCode(t, "CreateToken of a taken name", s.CreateToken(f.ctx, &gantry.Token{Name: "ci", Role: gantry.RoleAdmin, Hash: "other"}), gantry.ECONFLICT)
		mustOK(t, "CreateToken", s.CreateToken(f.ctx, &gantry.Token{Name: "admin", Role: gantry.RoleAdmin, Hash: gantry.HashToken("x")}))
		f.reopen()
		s = f.access()
		got, err := s.FindTokenByHash(f.ctx, gantry.HashToken("secret"))
		mustOK(t, "FindTokenByHash", err)
		sameJSON(t, "FindTokenByHash", got, want)
		if got.Hash != want.Hash {
			t.Errorf("Hash: got %q, want %q", got.Hash, want.Hash)
		}
		_, err = s.FindTokenByHash(f.ctx, gantry.HashToken("nope"))
		wantCode(t, "FindTokenByHash of an unknown secret", err, gantry.ENOTFOUND)
		list, err := s.ListTokens(f.ctx)
		mustOK(t, "ListTokens", err)
		if len(list) != 2 || list[0].Name != "admin" || list[1].Name != "ci" || list[0].Envs != nil {
			t.Errorf("ListTokens: got %+v, want admin (all environments) then ci", list)
		}
		mustOK(t, "RevokeToken", s.RevokeToken(f.ctx, "ci"))
		wantCode(t, "RevokeToken twice", s.RevokeToken(f.ctx, "ci"), gantry.ENOTFOUND)
		_, err = s.FindTokenByHash(f.ctx, gantry.HashToken("secret"))
		wantCode(t, "FindTokenByHash of a revoked token", err, gantry.ENOTFOUND)
	}},
	{"AuditChain", func(t *testing.T, f *fixture) {
		s := f.access()
		for i, env := range []string{"test", "prod", "test"} {
			f.clock.Advance(time.Minute)
			e := &gantry.AuditEntry{Actor: "alice", Operation: "POST deploy", App: "shop", Env: env, Release: fmt.Sprint("1.0.", i), Result: gantry.AuditOK}
			mustOK(t, "AppendAudit", s.AppendAudit(f.ctx, e))
			if e.Seq != int64(i+1) || e.Hash != e.ComputeHash() {
				t.Errorf("entry %d: seq %d hash %q, want seq %d and its computed hash", i, e.Seq, e.Hash, i+1)
			}
		}
		f.reopen()
		s = f.access()
		all, err := s.ListAudit(f.ctx, gantry.AuditFilter{})
		mustOK(t, "ListAudit", err)
		seq, hash, err := s.AuditHead(f.ctx)
		mustOK(t, "AuditHead", err)
		if len(all) != 3 || seq != 3 || hash != all[2].Hash {
			t.Fatalf("ListAudit: %d entries, head %d %q; want 3 with the head on the last", len(all), seq, hash)
		}
		if !all[0].Time.Equal(T0.Add(time.Minute)) {
			t.Errorf("Time: got %v, want %v", all[0].Time, T0.Add(time.Minute))
		}
		if b := gantry.VerifyAudit(all, seq, hash); b != nil {
			t.Errorf("VerifyAudit of an intact chain: %v", b)
		}
		test, err := s.ListAudit(f.ctx, gantry.AuditFilter{Env: "test"})
		mustOK(t, "ListAudit env=test", err)
		if len(test) != 2 || test[0].Seq != 1 || test[1].Seq != 3 {
			t.Errorf("ListAudit env=test: got %d entries, want seqs 1 and 3", len(test))
		}
		since, err := s.ListAudit(f.ctx, gantry.AuditFilter{Since: T0.Add(2 * time.Minute)})
		mustOK(t, "ListAudit since", err)
		if len(since) != 2 || since[0].Seq != 2 {
			t.Errorf("ListAudit since: got %d entries, want seqs 2 and 3", len(since))
		}
	}},
	{"AuditConcurrent", func(t *testing.T, f *fixture) {
		s := f.access()
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range 5 {
					e := &gantry.AuditEntry{Actor: fmt.Sprint("w", i), Operation: fmt.Sprint("op", j), Result: gantry.AuditOK}
					if err := s.AppendAudit(f.ctx, e); err != nil {
						t.Errorf("AppendAudit: %v", err)
					}
				}
			}()
		}
		wg.Wait()
		all, err := s.ListAudit(f.ctx, gantry.AuditFilter{})
		mustOK(t, "ListAudit", err)
		seq, hash, err := s.AuditHead(f.ctx)
		mustOK(t, "AuditHead", err)
		if len(all) != 40 {
			t.Fatalf("ListAudit: got %d entries, want 40", len(all))
		}
		if b := gantry.VerifyAudit(all, seq, hash); b != nil {
			t.Errorf("concurrent appends broke the chain: %v", b)
		}
	}},
	{"AuditSealed", auditSealedTest},
	{"Secrets", func(t *testing.T, f *fixture) {
		s := f.access()
		mustOK(t, "PutSecret", s.PutSecret(f.ctx, "shop", "test", "DB_URL", []byte{1, 2, 3}))
		mustOK(t, "PutSecret", s.PutSecret(f.ctx, "shop", "test", "API_KEY", []byte{4}))
		mustOK(t, "PutSecret again", s.PutSecret(f.ctx, "shop", "test", "DB_URL", []byte{5, 6}))
		got, err := s.FindSecret(f.ctx, "shop", "test", "DB_URL")
		mustOK(t, "FindSecret", err)
		if string(got) != string([]byte{5, 6}) {
			t.Errorf("FindSecret: got %v, want the replaced value [5 6]", got)
		}
		_, err = s.FindSecret(f.ctx, "shop", "prod", "DB_URL")
		wantCode(t, "FindSecret on another environment", err, gantry.ENOTFOUND)
		names, err := s.ListSecrets(f.ctx, "shop", "test")
		mustOK(t, "ListSecrets", err)
		if fmt.Sprint(names) != "[API_KEY DB_URL]" {
			t.Errorf("ListSecrets: got %v, want [API_KEY DB_URL]", names)
		}
		mustOK(t, "DeleteSecret", s.DeleteSecret(f.ctx, "shop", "test", "DB_URL"))
		wantCode(t, "DeleteSecret twice", s.DeleteSecret(f.ctx, "shop", "test", "DB_URL"), gantry.ENOTFOUND)
	}}, {"Deliveries", func(t *testing.T, f *fixture) {
		s := f.access()
		day := 24 * time.Hour
		mustOK(t, "RememberDelivery", s.RememberDelivery(f.ctx, "github/shop", "d1", T0, T0.Add(-day)))
		wantCode(t, "RememberDelivery of a replay", s.RememberDelivery(f.ctx, "github/shop", "d1", T0.Add(time.Minute), T0.Add(-day)), gantry.ECONFLICT)
		mustOK(t, "RememberDelivery of the same id from another source", s.RememberDelivery(f.ctx, "gitlab/shop", "d1", T0, T0.Add(-day)))
		f.reopen()
		s = f.access()
		wantCode(t, "RememberDelivery of a replay after a restart", s.RememberDelivery(f.ctx, "github/shop", "d1", T0.Add(time.Hour), T0.Add(-day)), gantry.ECONFLICT)
		// Past the bound the id is forgotten (the caller refuses it by its
		// timestamp instead).
		mustOK(t, "RememberDelivery once forgotten", s.RememberDelivery(f.ctx, "github/shop", "d1", T0.Add(2*day), T0.Add(day)))
	}},
}
