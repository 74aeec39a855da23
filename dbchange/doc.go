// Package dbchange applies an app's database migrations around a blue-green
// deploy on PostgreSQL: expand before the candidate starts (pgroll Start, or
// the expand/ files of the plain SQL engine), contract once no slot that
// needs the old schema may take traffic, rollback while a migration is
// active, snapshots with pg_dump before each step, restores, and copies of a
// database for a new environment, with a ledger of all of it kept in the
// database itself (schema gantry_ledger, left out of snapshots so that a
// restore never rewinds it).
//
// It implements gantry.DatabaseChanger. The orchestrator drives it:
//
//	plan := Plan(b, {Release, Migrations, Live: a slot is active or standby})
//	refuse the deploy if plan.Action == PlanRefuse (plan.Reason says why)
//	Expand(b, plan)                   before the candidate's instances start
//	ConnVars(b, release's migrations) into every instance's environment
//	… health, verify, switch …
//	Contract(b, {Env})                when the old slot stops (keep-warm over),
//	                                  or by `gantry db contract ENV`
//	Rollback(b, {})                   on a rollback while a migration is
//	                                  active, after traffic is flipped back
//
// Every step that changes the database holds a per-database advisory lock,
// so migrations, restores and copies on one database never overlap.
//
// It must not decide when a slot is safe to stop or when to switch traffic
// (the orchestrator does, and passes what it knows in gantry.ContractGuard),
// must not log or return the URLs it is given (they carry secrets), and must
// not import other implementation packages.
package dbchange
