package api

import (
	"context"
	"net/http"

	"github.com/gantry-dev/gantry"
)

// ImportRequest registers images built by an outside CI as a release of an
// app, so that they are deployed and promoted by digest like images Gantry
// built itself.
type ImportRequest struct {
	App     string `json:"app"`
	Version string `json:"version"`
	// Commit is the commit the images were built from; its gantry.yml
	// becomes the release's manifest.
	Commit string `json:"commit"`
	Ref    string `json:"ref,omitempty"`
	// Images maps a service to its image, repository@sha256:<digest>.
	Images map[string]string `json:"images"`
	Actor  string            `json:"actor,omitempty"`
}

// ImportRelease asks the server to record an imported release
// (POST /v1/apps/{app}/releases/import) and returns it.
func (c *Client) ImportRelease(ctx context.Context, req ImportRequest) (*gantry.Release, error) {
	var out gantry.Release
	if err := c.do(ctx, http.MethodPost, appPath(req.App)+"/releases/import", req, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
