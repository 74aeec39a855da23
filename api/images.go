package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/gantry-dev/gantry"
)

func (s *Server) pruneImages(w http.ResponseWriter, r *http.Request) {
	keep, err := queryInt(r, "keep", 0)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if s.Images == nil {
		s.fail(w, r, gantry.Errorf(gantry.EINVALID, "this server does not manage images"))
		return
	}
	removed, err := s.Images.PruneImages(r.Context(), keep)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"removed": nonNil(removed)})
}

// PruneImages removes images no environment needs, keeping the last keep
// releases of each environment (0: the server's default).
func (c *Client) PruneImages(ctx context.Context, keep int) ([]string, error) {
	var out struct {
		Removed []string `json:"removed"`
	}
	err := c.do(ctx, http.MethodPost, "/v1/images/prune?keep="+strconv.Itoa(keep), nil, &out)
	return out.Removed, err
}
