package gantry

import "context"

// SlotDriver is an optional ability of a Driver whose runtime switches
// traffic itself, a slot at a time (Kubernetes: a Deployment per service and
// a Service whose selector names the active slot). The orchestrator finds it
// by type assertion and uses it instead of starting instances one by one:
//
//	deploy:   StartSlot(candidate) → verify via preview → Switch(candidate)
//	rollback: Switch(previous)  (the driver scales the standby up first if needed)
//	expiry:   StopSlot(standby, false) when keep-warm ends
//
// With Gantry's router in front of the runtime (RuntimeSpec.Traffic
// TrafficRouter), the router is switched to the slot's instances first and
// Switch follows it.
//
// Every method is idempotent, so a deployment recovered after a crash may
// repeat the step it was on.
type SlotDriver interface {
	// StartSlot creates or updates the slot's workloads for a release and
	// returns once every service is fully rolled out and ready, or with an
	// error that says why not (events of failing pods, progress deadline).
	// Starting the other slot never touches the active one or where traffic
	// goes; starting the active slot again is a rolling update in place
	// (the "restart" strategy), which never has fewer ready instances.
	StartSlot(ctx context.Context, spec SlotSpec) ([]Instance, error)
	// Switch points the environment's traffic (and the preview at the
	// other slot) at ref's slot, after making sure that slot has replicas
	// and is rolled out.
	Switch(ctx context.Context, ref SlotRef) error
	// ActiveSlot reports the slot taking traffic as the runtime sees it
	// ("" when none), so the orchestrator can re-attach after a restart.
	// ref.Slot is ignored.
	ActiveSlot(ctx context.Context, ref SlotRef) (string, error)
	// StopSlot scales the slot down to zero, keeping its objects so a
	// rollback can scale it up again; remove deletes them. Stopping the
	// active slot is refused with ECONFLICT.
	StopSlot(ctx context.Context, ref SlotRef, remove bool) error
}

// SlotRef names a slot of an environment.
type SlotRef struct {
	App  string `json:"app"`
	Env  string `json:"env"`
	Slot string `json:"slot"`
	// Runtime is the environment's runtime settings (a Kubernetes
	// namespace, …): a driver learns them here, never from the store.
	Runtime RuntimeSpec `json:"runtime"`
	// Hosts and PreviewHosts are the environment's hosts and its preview
	// hosts, for a runtime that serves them itself (Kubernetes routing
	// objects): Switch points Hosts at the active slot and PreviewHosts at
	// the other one.
	Hosts        []string `json:"hosts,omitempty"`
	PreviewHosts []string `json:"preview_hosts,omitempty"`
}

// HostReleaser is an optional ability of a SlotDriver that serves an
// environment's hosts itself. ReleaseHosts removes what serves the hosts
// of environment ref.Env in ref.Runtime, once another environment (or the
// same one under a new name) serves them: a rename first switches the
// environment under its new name, which claims its hosts, and only then
// releases the old name's, so the hosts are never without an environment.
// Releasing what does not exist is not an error.
type HostReleaser interface {
	ReleaseHosts(ctx context.Context, ref SlotRef) error
}

// SlotSpec is a whole slot: one release, every service of it.
type SlotSpec struct {
	SlotRef
	ReleaseID string            `json:"release_id"`
	Services  []SlotServiceSpec `json:"services"`
}

// SlotServiceSpec is one service of a slot. Spec.Index is ignored; the
// runtime runs Instances copies.
type SlotServiceSpec struct {
	Spec      InstanceSpec `json:"spec"`
	Instances int          `json:"instances"`
	// HTTP services get traffic through a switch; workers only run.
	HTTP bool `json:"http"`
}

// SlotPreviewer is an optional ability of a SlotDriver: it opens a way from
// where Gantry runs to the preview of an environment (the slot StartSlot
// started last, before the switch), for the verify checks. The way must
// not need the pods' addresses to be reachable: Gantry may run outside the
// cluster.
type SlotPreviewer interface {
	OpenPreview(ctx context.Context, ref SlotRef) (*SlotPreview, error)
}

// SlotPreview is an open way to an environment's preview: URL answers plain
// HTTP on the local host (a verify command gets it as GANTRY_URL) until
// Close.
type SlotPreview struct {
	URL string
	// Via says, for the journal, what carries the requests.
	Via   string
	Close func() error
}

// SlotFollower is an optional ability of a SlotDriver whose runtime
// replaces a slot's instances by itself (Kubernetes reschedules a pod, and
// the new one has another address). With Gantry's router in front
// (TrafficRouter), the orchestrator follows the changes: it watches, and
// points the router at the ready instances.
type SlotFollower interface {
	// SlotInstances returns the slot's instances as they are now, as
	// StartSlot would: one per wanted replica, with an address only for a
	// ready one.
	SlotInstances(ctx context.Context, ref SlotRef) ([]Instance, error)
	// WatchSlots calls changed after each change of an instance of ref's
	// environment (any slot; ref.Slot is ignored) until ctx ends (nil) or
	// the watch fails or closes (an error: the caller starts it again).
	WatchSlots(ctx context.Context, ref SlotRef, changed func()) error
}
