package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/gantry-dev/gantry"
)

// Logs writes the container's output, stdout and stderr interleaved as the
// engine recorded them: the last tail lines (all when tail <= 0), and when
// follow, what comes next until ctx ends (then it returns nil). It reads the
// logs of a stopped container too, until the next Start of the same instance
// replaces it.
func (d *Driver) Logs(ctx context.Context, inst gantry.Instance, tail int, follow bool, w io.Writer) error {
	c, err := d.container(ctx, inst)
	if notFound(err) {
		return gantry.Errorf(gantry.ENOTFOUND, "instance %s is gone, and its logs with it", describe(inst))
	} else if err != nil {
		return fmt.Errorf("logs %s: %w", describe(inst), err)
	}
	opts := container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: follow, Tail: "all"}
	if tail > 0 {
		opts.Tail = strconv.Itoa(tail)
	}
	rc, err := d.Client.ContainerLogs(ctx, c.ID, opts)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("logs %s: %w", describe(inst), err)
	}
	defer rc.Close()
	// Closing the stream is what ends a follow blocked in a read.
	stop := context.AfterFunc(ctx, func() { rc.Close() })
	defer stop()
	var copyErr error
	if c.Config != nil && c.Config.Tty {
		_, copyErr = io.Copy(w, rc)
	} else {
		// Without a TTY the engine multiplexes both streams in frames.
		_, copyErr = stdcopy.StdCopy(w, w, rc)
	}
	if copyErr != nil && ctx.Err() == nil && !errors.Is(copyErr, io.EOF) {
		return fmt.Errorf("logs %s: %w", describe(inst), copyErr)
	}
	return nil
}
