package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/tarball"
)

// tailLines is how much of a failed build's output its error carries.
const tailLines = 20

// passEnv are the variables a build command inherits from the server. The
// rest of the server's environment, with its credentials, is not passed:
// a build runs code from the repository.
var passEnv = []string{
	"PATH", "HOME", "TMPDIR", "LANG",
	"GOCACHE", "GOPATH", "GOMODCACHE", "GOPROXY", "GONOSUMDB", "GOPRIVATE", "GOTOOLCHAIN", "GOFLAGS",
}

// buildEnv is the environment of a build command.
func buildEnv(getenv func(string) string, app, version, commit string) []string {
	var env []string
	for _, k := range passEnv {
		if v := getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	if getenv("PATH") == "" {
		env = append(env, "PATH=/usr/local/bin:/usr/bin:/bin")
	}
	if getenv("GOFLAGS") == "" {
		// The export has no .git by design: Go would either stamp the
		// build with an enclosing repository or fail to find one.
		env = append(env, "GOFLAGS=-buildvcs=false")
	}
	return append(env, "GANTRY_APP="+app, "GANTRY_VERSION="+version, "GANTRY_COMMIT="+commit)
}

// buildService runs svc's build command in dir and stores its artifacts.
func (b *Builder) buildService(ctx context.Context, p *progress, log *slog.Logger, dir string, svc *gantry.Service, env []string) (gantry.Artifact, error) {
	start := time.Now()
	p.stepf("%s: $ %s", svc.Name, svc.Build.Command)
	out := newLineWriter(p.w, svc.Name+" | ", tailLines)
	cmd := exec.CommandContext(ctx, "sh", "-c", svc.Build.Command)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = out, out
	killGroup(cmd)
	// A background process that keeps the output pipe open must not hold
	// the build forever after the command itself has exited.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	out.Flush()
	elapsed := time.Since(start).Round(time.Millisecond)
	if err != nil {
		if ctx.Err() != nil {
			return gantry.Artifact{}, fmt.Errorf("service %s: build interrupted: %w", svc.Name, ctx.Err())
		}
		tail := out.Tail()
		if tail == "" {
			tail = "(no output)"
		}
		log.Warn("build failed", logService, svc.Name, logElapsed, elapsed, "error", err)
		return gantry.Artifact{}, gantry.Errorf(gantry.EFAILED, "service %s: build command %q failed (%v) after %s; last %d lines of output:\n%s",
			svc.Name, svc.Build.Command, err, elapsed, tailLines, tail)
	}
	paths := svc.Build.Artifacts
	if len(paths) == 0 {
		return gantry.Artifact{}, gantry.Errorf(gantry.EINVALID, "service %s: build has no artifacts to keep", svc.Name)
	}
	for _, a := range paths {
		if _, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(a))); errors.Is(err, fs.ErrNotExist) {
			return gantry.Artifact{}, gantry.Errorf(gantry.EINVALID, "service %s: artifact %q was not produced by %q", svc.Name, a, svc.Build.Command)
		}
	}
	if err := contained(dir, paths, "service "+svc.Name); err != nil {
		return gantry.Artifact{}, err
	}
	a, err := b.storeTarball(ctx, dir, paths)
	if err != nil {
		return gantry.Artifact{}, fmt.Errorf("service %s: %w", svc.Name, err)
	}
	log.Info("service built", logService, svc.Name, logDigest, a.Digest, logElapsed, elapsed)
	p.stepf("%s: built in %s: %s (%d bytes)", svc.Name, elapsed, a.Digest, a.Size)
	return a, nil
}

// contained refuses artifact paths that resolve outside the export through
// a symlink: a committed link such as etcdir -> /etc would otherwise ship
// the build machine's files, or point at the runtime machine's. The whole
// export kept as the source artifact is not checked: its links are the
// commit's own content and are stored as links, never followed.
func contained(dir string, paths []string, what string) error {
	err := tarball.Contained(dir, paths)
	var oe *tarball.OutsideError
	if errors.As(err, &oe) {
		return gantry.Errorf(gantry.EINVALID, "%s: %s; artifacts must stay inside the commit's export", what, oe.Error())
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// storeTarball streams a deterministic tarball of paths under root into the
// artifact store, without a temporary copy.
func (b *Builder) storeTarball(ctx context.Context, root string, paths []string) (gantry.Artifact, error) {
	for _, p := range paths {
		if c := filepath.ToSlash(filepath.Clean(p)); c == ".." || strings.HasPrefix(c, "../") || filepath.IsAbs(p) {
			return gantry.Artifact{}, gantry.Errorf(gantry.EINVALID, "artifact path %q is outside the build directory", p)
		}
	}
	pr, pw := io.Pipe()
	written := make(chan struct{})
	go func() {
		defer close(written)
		pw.CloseWithError(tarball.Write(pw, root, paths))
	}()
	digest, size, err := b.Artifacts.Put(ctx, pr)
	// Unblock the writer if Put gave up before the end of the stream, and
	// wait for it: the export it reads is removed after the build.
	pr.CloseWithError(errors.New("artifact store stopped reading"))
	<-written
	if err != nil {
		return gantry.Artifact{}, fmt.Errorf("store artifact: %w", err)
	}
	return gantry.Artifact{Kind: gantry.ArtifactTarball, Digest: digest, Size: size}, nil
}
