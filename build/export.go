package build

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/gantry-dev/gantry/internal/tarball"
)

// export writes the tree of commit, and nothing else, into dst (an empty
// directory). It reads `git archive` output rather than checking the commit
// out, so the working tree of a local repository, with its uncommitted and
// untracked files, is never looked at. Submodules are not exported: git
// archive leaves them out, and builds that need them are out of scope.
// .gitattributes export-ignore and export-subst apply, as with any archive.
func export(ctx context.Context, gitDir, commit, dst string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", "-C", gitDir, "archive", "--format=tar", commit)
	cmd.Env = append(os.Environ(), gitEnv...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("export %s: %w", shortSHA(commit), err)
	}
	xerr := extractTar(stdout, dst)
	if xerr != nil {
		cancel() // stop git rather than wait for it to fill a pipe nobody reads
	}
	// Drain so git is not blocked writing; it exits after its last entry.
	_, _ = io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	switch {
	case xerr != nil:
		return fmt.Errorf("export %s: %w", shortSHA(commit), xerr)
	case werr != nil:
		if err := ctx.Err(); err != nil {
			return err
		}
		return fmt.Errorf("export %s: git archive: %s", shortSHA(commit), strings.TrimSpace(stderr.String()))
	}
	return nil
}

// extractTar unpacks git archive's tar stream, refusing anything that would
// land outside dst (the checks live with the release tarballs' own).
func extractTar(r io.Reader, dst string) error { return tarball.ExtractTar(r, dst) }
