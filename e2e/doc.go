// Package e2e holds end-to-end tests that drive the gantry binary against
// real outside systems (a Docker Engine and registries, …), each in a
// package of its own so that its throwaway services start only for it.
// It contains no code that the binary uses.
package e2e
