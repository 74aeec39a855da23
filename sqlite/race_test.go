//go:build race

package sqlite

// raceEnabled skips what measures speed: the race detector slows SQLite's
// Go code tenfold, which says nothing about the store.
const raceEnabled = true
