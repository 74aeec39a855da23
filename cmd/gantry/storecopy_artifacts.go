package main

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/artifact"
	"github.com/gantry-dev/gantry/postgres"
)

// copyArtifacts copies every artifact of <data>/artifacts into the
// destination store's own, for servers started with --artifacts store:
// each is read verified against its digest and stored under the same one.
func (c *storeCopy) copyArtifacts(ctx context.Context, dst *postgres.DB, r *CopyReport) error {
	src, err := artifact.NewLocal(filepath.Join(c.data, "artifacts"))
	if err != nil {
		return err
	}
	digests, err := src.List()
	if err != nil {
		return fmt.Errorf("store copy: list artifacts: %w", err)
	}
	to := dst.Artifacts()
	for _, d := range digests {
		rc, err := src.Open(ctx, d)
		if err != nil {
			return err
		}
		got, size, err := to.Put(ctx, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("store copy: artifact %s: %w", d, err)
		}
		if got != d {
			return gantry.Errorf(gantry.EFAILED, "store copy: artifact %s was stored as %s", d, got)
		}
		r.Artifacts++
		fmt.Fprintf(c.progress, "copied artifact %s (%d bytes)\n", d, size)
	}
	return nil
}
