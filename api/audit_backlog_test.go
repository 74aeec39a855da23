package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/sqlite"
)

// fullDiskAudit refuses appends while full is set, as a store on a full
// disk does, and otherwise writes to the real audit log underneath.
type fullDiskAudit struct {
	gantry.AuditLog
	full atomic.Bool
}

func (a *fullDiskAudit) AppendAudit(ctx context.Context, e *gantry.AuditEntry) error {
	if a.full.Load() {
		return gantry.Errorf(gantry.EUNAVAILABLE, "the disk of the data directory is full")
	}
	return a.AuditLog.AppendAudit(ctx, e)
}

// TestDenialsOnAFullDiskAreAuditedLater: denials made while the store
// refuses writes are kept and written, in order, once it takes them again.
func TestDenialsOnAFullDiskAreAuditedLater(t *testing.T) {
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	audit := &fullDiskAudit{AuditLog: db}
	s := &Server{Store: db, Deploys: nopDeploys{}, Releases: nopDeploys{}, Tokens: db, Audit: audit}
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(hs.Close)
	f := &accessFixture{srv: s, db: db, url: hs.URL}
	viewer := f.token(t, "v", gantry.RoleViewer)

	audit.full.Store(true)
	for range 3 {
		if code, _ := f.call(t, http.MethodPost, "/v1/apps/shop/environments/prod/deploy", viewer); code != http.StatusForbidden {
			t.Fatalf("a viewer's deploy: status %d, want 403", code)
		}
	}
	if got, _ := db.ListAudit(context.Background(), gantry.AuditFilter{}); len(got) != 0 {
		t.Fatalf("the full store holds %d entries", len(got))
	}
	audit.full.Store(false)
	f.call(t, http.MethodPost, "/v1/apps/shop/environments/prod/deploy", viewer)
	got, err := db.ListAudit(context.Background(), gantry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	denied := 0
	for _, e := range got {
		if e.Result == gantry.AuditDenied {
			denied++
		}
	}
	if denied != 4 {
		t.Errorf("audit trail holds %d denials, want the 3 made on the full disk and the one after", denied)
	}
}
