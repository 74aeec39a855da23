package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
)

// fingerprint binds an approval to what it approves: the release's artifact
// digests and manifest digest, and the configuration it would run with on
// the target environment: settings, variables, and the secrets' values,
// which enter only through this hash and so never leave the server.
func (o *Orchestrator) fingerprint(rel *gantry.Release, env string, spec *gantry.EnvironmentSpec) string {
	h := sha256.New()
	services := make([]string, 0, len(rel.Artifacts))
	for s := range rel.Artifacts {
		services = append(services, s)
	}
	sort.Strings(services)
	for _, s := range services {
		fmt.Fprintf(h, "artifact %s %s %s\n", s, rel.Artifacts[s].Digest, rel.Artifacts[s].Image)
	}
	fmt.Fprintf(h, "manifest %s\n", rel.ManifestDigest)
	cfg, _ := json.Marshal(spec) // maps marshal with sorted keys
	h.Write(cfg)
	secrets := append([]string(nil), spec.Secrets...)
	sort.Strings(secrets)
	for _, name := range secrets {
		v, ok := o.secretValue(rel.App, env, name)
		sum := sha256.Sum256([]byte(v))
		fmt.Fprintf(h, "\nsecret %s %t %x", name, ok, sum)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// targetSpec returns the configuration a release would run with on env.
func (o *Orchestrator) targetSpec(ctx context.Context, app, envName string, rel *gantry.Release) (*gantry.EnvironmentSpec, error) {
	m, err := o.manifestOf(rel)
	if err != nil {
		return nil, err
	}
	existing, err := o.Store.FindEnvironment(ctx, app, envName)
	if err != nil && gantry.ErrorCode(err) != gantry.ENOTFOUND {
		return nil, err
	}
	spec, ok := specFor(m, existing, envName)
	if !ok {
		return nil, gantry.Errorf(gantry.EINVALID, "environment %q is not declared in the manifest of release %s", envName, rel.Version)
	}
	return spec, nil
}

// Approve records an approval of a release for an environment.
func (o *Orchestrator) Approve(ctx context.Context, req gantry.ApproveRequest) (*gantry.Approval, error) {
	rel, err := o.Store.FindRelease(ctx, req.App, req.Release)
	if err != nil {
		return nil, err
	}
	spec, err := o.targetSpec(ctx, req.App, req.Env, rel)
	if err != nil {
		return nil, err
	}
	if p := spec.Approvals; p != nil && len(p.Roles) > 0 && req.Role != "" && req.Role != "admin" && !slices.Contains(p.Roles, req.Role) {
		return nil, gantry.Errorf(gantry.EFORBIDDEN, "approvals of %q are given by %s; %s has role %s", req.Env, strings.Join(p.Roles, " or "), req.Actor, req.Role)
	}
	a := &gantry.Approval{App: req.App, Env: req.Env, ReleaseID: rel.ID, Fingerprint: o.fingerprint(rel, req.Env, spec),
		Approver: req.Actor, Role: req.Role, Comment: req.Comment, CreatedAt: o.now()}
	if err := o.Store.CreateApproval(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// approvalPolicy is the approval policy that applies to rel on an
// environment: the hotfix channel's for a hotfix release, when it has one.
func approvalPolicy(spec *gantry.EnvironmentSpec, rel *gantry.Release) *gantry.ApprovalPolicy {
	if spec.HotfixApprovals != nil && rel != nil && isHotfix(rel) {
		return spec.HotfixApprovals
	}
	return spec.Approvals
}

// checkApprovals refuses op unless its release has the approvals p
// requires. Approvals count once per approver, only when given for the
// exact digests and configuration that would run, never from the person
// asking (no self-approval), and only from the required roles.
func (o *Orchestrator) checkApprovals(ctx context.Context, op *op, p *gantry.ApprovalPolicy) error {
	rel := op.rel
	as, err := o.Store.ListApprovals(ctx, op.app, op.env, rel.ID)
	if err != nil {
		return err
	}
	want := o.fingerprint(rel, op.env, op.spec)
	counted := map[string]bool{}
	var voided, self, wrongRole []string
	for _, a := range as {
		switch {
		case a.Fingerprint != want:
			voided = append(voided, a.Approver)
		case a.Approver == op.actor:
			self = append(self, a.Approver)
		case len(p.Roles) > 0 && a.Role != "" && a.Role != "admin" && !slices.Contains(p.Roles, a.Role):
			wrongRole = append(wrongRole, a.Approver+" ("+a.Role+")")
		default:
			counted[a.Approver] = true
		}
	}
	if len(counted) >= p.Required {
		return nil
	}
	names := make([]string, 0, len(counted))
	for n := range counted {
		names = append(names, n)
	}
	sort.Strings(names)
	msg := fmt.Sprintf("%s on %q needs %d approval(s)", rel.Version, op.env, p.Required)
	if len(p.Roles) > 0 {
		msg += " from " + strings.Join(p.Roles, " or ")
	}
	msg += fmt.Sprintf("; it has %d", len(counted))
	if len(names) > 0 {
		msg += " (" + strings.Join(names, ", ") + ")"
	}
	if len(voided) > 0 {
		msg += "; approvals by " + strings.Join(voided, ", ") + " no longer count: the release's digests or the environment's configuration changed since they were given"
	}
	if len(self) > 0 {
		msg += "; " + op.actor + " cannot approve their own promotion"
	}
	if len(wrongRole) > 0 {
		msg += "; approvals by " + strings.Join(wrongRole, ", ") + " are not from a required role"
	}
	return refuse(GateApprovals, fmt.Sprintf("gantry approve %s --release %s (by someone else), then the same command", op.env, rel.ID), "%s", msg)
}

// hotfixVersion is a calendar version with hotfix letters: 16.03.1b.
var hotfixVersion = lazyre.New(`^[0-9]{2}\.[0-9]{2}\.[0-9]+[a-z]+$`)

// isHotfix says whether a release goes through the hotfix channel: built
// from a hotfix/ branch, or versioned as a hotfix.
func isHotfix(rel *gantry.Release) bool {
	return strings.HasPrefix(rel.Ref, "hotfix/") || hotfixVersion.MatchString(rel.Version)
}
