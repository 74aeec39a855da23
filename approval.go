package gantry

import "time"

// Approval records that someone approved a release for an environment. It
// is bound to what was approved: the release's digests and its
// configuration, as a fingerprint; when either changes before the
// promotion, the approval no longer counts.
type Approval struct {
	ID          int64     `json:"id"`
	App         string    `json:"app"`
	Env         string    `json:"env"`
	ReleaseID   string    `json:"release_id"`
	Fingerprint string    `json:"fingerprint"`
	Approver    string    `json:"approver"`
	Role        string    `json:"role,omitempty"`
	Comment     string    `json:"comment,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
}

// ApproveRequest asks to approve a release for an environment.
type ApproveRequest struct {
	App     string `json:"app"`
	Env     string `json:"env"`
	Release string `json:"release"`
	Comment string `json:"comment,omitempty"`
	Actor   string `json:"actor"`
	Role    string `json:"role,omitempty"`
}
