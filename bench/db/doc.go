// Package dbbench measures database changes under load: the latency of
// concurrent writers before and during a pgroll Start (expand with a batched
// backfill) on a table of one million rows, against a throwaway PostgreSQL.
//
// It holds benchmarks only, run by hand (see README.md); nothing here is
// compiled into the gantry binary.
package dbbench
