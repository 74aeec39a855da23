package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/gantry-dev/gantry"
)

// auditNote collects what a handler learns that the audit entry records:
// the release it acted on and how it ended.
type auditNote struct {
	release string
	code    string
	// actor, when set, is who the request turned out to act as: a forge's
	// delivery, authenticated by its signature, acts as its hook's token.
	actor string
}

type auditKey struct{}

func note(r *http.Request) *auditNote {
	n, _ := r.Context().Value(auditKey{}).(*auditNote)
	return n
}

func noteRelease(r *http.Request, id string) {
	if n := note(r); n != nil && id != "" {
		n.release = id
	}
}

func noteError(r *http.Request, err error) {
	if n := note(r); n != nil && err != nil {
		n.code = gantry.ErrorCode(err)
	}
}

// noteResult records the release of an operation's result.
func noteResult(r *http.Request, v any) {
	switch v := v.(type) {
	case *gantry.Deployment:
		noteRelease(r, v.ReleaseID)
	case *gantry.Release:
		noteRelease(r, v.ID)
	}
}

// withAudit records every request that may change state (every method but
// GET) once it has been answered: who, what, where, which release, and how
// it ended. Reads are not recorded; denied reads are, by withAuth.
func (s *Server) withAudit(rt route, next http.Handler) http.Handler {
	// A router's report is its heartbeat (every second), not a change of
	// what anyone deploys: recording it would bury the trail.
	if s.Audit == nil || strings.HasPrefix(rt.pattern, "GET ") || rt.pattern == routerReportPattern {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := &auditNote{release: requestedRelease(r, strings.HasSuffix(rt.pattern, "/rollback"))}
		r = r.WithContext(context.WithValue(r.Context(), auditKey{}, n))
		next.ServeHTTP(w, r)
		who := actor(r)
		if n.actor != "" {
			who = n.actor
		}
		e := s.auditEntry(r, rt, who)
		e.Release = n.release
		if n.code != "" {
			e.Result, e.Code = gantry.AuditFailed, n.code
		}
		s.appendAudit(r.Context(), e)
	})
}

func (s *Server) auditEntry(r *http.Request, rt route, who string) *gantry.AuditEntry {
	return &gantry.AuditEntry{
		Time: s.now(), Actor: who, Operation: rt.pattern,
		App: r.PathValue("app"), Env: r.PathValue("env"), Result: gantry.AuditOK,
	}
}

func (s *Server) auditDenied(r *http.Request, rt route, who string, err error) {
	if s.Audit == nil {
		return
	}
	e := s.auditEntry(r, rt, who)
	e.Result, e.Code = gantry.AuditDenied, gantry.ErrorCode(err)
	e.Release = requestedRelease(r, strings.HasSuffix(rt.pattern, "/rollback"))
	s.appendAudit(r.Context(), e)
}

// appendAudit writes an entry even when the request's context has ended: a
// client that hangs up does not erase its trace. An entry the store cannot
// take (a full disk) is kept, in order, and written before the next one, so
// that what was denied while the disk was full is still audited once it is
// not; past auditBacklogMax entries the oldest are dropped, and logged.
func (s *Server) appendAudit(ctx context.Context, e *gantry.AuditEntry) {
	ctx = context.WithoutCancel(ctx)
	s.auditMu.Lock()
	defer s.auditMu.Unlock()
	for len(s.auditBacklog) > 0 {
		if err := s.Audit.AppendAudit(ctx, s.auditBacklog[0]); err != nil {
			break
		}
		s.auditBacklog = s.auditBacklog[1:]
	}
	if len(s.auditBacklog) == 0 {
		err := s.Audit.AppendAudit(ctx, e)
		if err == nil {
			return
		}
		s.logger().Error("audit trail: append failed; kept to write later", "operation", e.Operation, "actor", e.Actor, "error", err)
	}
	if len(s.auditBacklog) >= auditBacklogMax {
		dropped := s.auditBacklog[0]
		s.auditBacklog = s.auditBacklog[1:]
		s.logger().Error("audit trail: backlog full, entry lost", "operation", dropped.Operation, "actor", dropped.Actor, "time", dropped.Time)
	}
	s.auditBacklog = append(s.auditBacklog, e)
}

// auditBacklogMax bounds the entries kept while the store refuses writes.
const auditBacklogMax = 10000

// requestedRelease reads the release a request names in its JSON body
// ("release", or "to" for a rollback; elsewhere "to" names an environment), so that an operation refused or
// failed before it resolved one is still recorded against it. The body is
// put back for the handler; nothing else of it is kept, so a secret's value
// never reaches the audit trail.
func requestedRelease(r *http.Request, rollback bool) string {
	if r.Body == nil || r.Body == http.NoBody {
		return ""
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
	if err != nil {
		return ""
	}
	var v struct {
		Release string `json:"release"`
		To      string `json:"to"`
	}
	if json.Unmarshal(b, &v) != nil {
		return ""
	}
	if v.Release == "" && rollback {
		return v.To
	}
	return v.Release
}
