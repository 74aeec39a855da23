// Package gantry holds Gantry's domain: apps, releases, environments, slots,
// deployments and their journal, coded errors, and the interfaces that the
// implementation packages satisfy (Store, Driver, Router, ArtifactStore).
//
// It imports the standard library only. Implementations live in packages named
// after what they use (sqlite/, proxy/, driver/process/, …) and talk to each
// other only through the types declared here; cmd/gantry wires them together.
package gantry

import "time"

// Version is the version of the gantry binary, set at link time.
var Version = "dev"

// App is a git repository with a gantry.yml at its root.
type App struct {
	Name      string    `json:"name"`
	Repo      string    `json:"repo"`
	CreatedAt time.Time `json:"created_at"`
}
