package build

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
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

// extractTar unpacks git archive's tar stream. git writes clean relative
// names, but a crafted repository is still input: an entry that would land
// outside dst, or be written through a symlink, is refused.
func extractTar(r io.Reader, dst string) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			continue // git's comment holding the commit id
		}
		name := path.Clean(strings.TrimSuffix(hdr.Name, "/"))
		if name == "." || name == ".." || strings.HasPrefix(name, "../") || path.IsAbs(name) {
			return fmt.Errorf("archive entry %q is outside the export", hdr.Name)
		}
		full := filepath.Join(dst, filepath.FromSlash(name))
		if err := noSymlinkParents(dst, name); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(full, 0o755); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(hdr.Linkname, full); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				return err
			}
			mode := fs.FileMode(0o644)
			if hdr.Mode&0o111 != 0 {
				mode = 0o755
			}
			f, err := os.OpenFile(full, os.O_CREATE|os.O_EXCL|os.O_WRONLY, mode)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("archive entry %q has unsupported type %q", hdr.Name, hdr.Typeflag)
		}
	}
}

// noSymlinkParents fails when a directory on the way to name inside root is
// a symlink, which would let an entry be written outside root.
func noSymlinkParents(root, name string) error {
	dir := root
	parts := strings.Split(name, "/")
	for _, p := range parts[:len(parts)-1] {
		dir = filepath.Join(dir, p)
		fi, err := os.Lstat(dir)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		} else if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("archive entry %q goes through a symlink", name)
		}
	}
	return nil
}
