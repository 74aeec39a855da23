// Package dbchange applies an app's database migrations around a blue-green
// deploy on PostgreSQL: expand before the candidate starts (pgroll Start, or
// the expand/ files of the plain SQL engine), contract once no slot that
// needs the old schema may take traffic, rollback while a migration is
// active, snapshots with pg_dump before each step, restores, and copies of a
// database for a new environment, with a ledger of all of it kept in the
// database itself.
//
// It implements gantry.DatabaseChanger. It must not decide when a slot is
// safe to stop or switch traffic (the orchestrator does, and passes what it
// knows in gantry.ContractGuard), must not log or return connection URLs
// (they carry secrets), and must not import other implementation packages.
package dbchange
