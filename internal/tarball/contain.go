package tarball

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// OutsideError says which artifact path reaches outside the directory it is
// collected from, and through which symlink.
type OutsideError struct {
	Artifact string // the path as the manifest lists it
	Link     string // the symlink, relative to the root
	Target   string // what the symlink points at, as stored in it
}

func (e *OutsideError) Error() string {
	return fmt.Sprintf("artifact %q: %s is a symlink to %s, outside the build directory", e.Artifact, e.Link, e.Target)
}

// Contained fails with an *OutsideError when any of paths, relative to
// root, resolves outside root: a directory on the way to it that is a
// symlink leading out (which would make Write copy the build machine's
// files), or a symlink at or below it whose target is absolute or leads
// out (which would point, once unpacked, at the files of whatever machine
// runs the release). Symlinks that stay inside root are kept, as links.
func Contained(root string, paths []string) error {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	for _, p := range paths {
		clean := path.Clean(filepath.ToSlash(p))
		if clean == ".." || strings.HasPrefix(clean, "../") || path.IsAbs(clean) {
			return fmt.Errorf("artifact path %q is outside the build directory", p)
		}
		parts := strings.Split(clean, "/")
		for i := 1; i < len(parts); i++ {
			rel := strings.Join(parts[:i], "/")
			if err := linkInside(root, realRoot, rel); err != nil {
				return outside(err, p)
			}
		}
		err := filepath.WalkDir(filepath.Join(root, filepath.FromSlash(clean)), func(full string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type()&fs.ModeSymlink == 0 {
				return nil
			}
			rel, err := filepath.Rel(root, full)
			if err != nil {
				return err
			}
			return linkInside(root, realRoot, filepath.ToSlash(rel))
		})
		if errors.Is(err, fs.ErrNotExist) {
			continue // Write reports what is missing
		}
		if err != nil {
			return outside(err, p)
		}
	}
	return nil
}

// linkInside checks rel (relative to root) when it is a symlink: its target
// must be relative and resolve inside the tree, following further links.
func linkInside(root, realRoot, rel string) error {
	full := filepath.Join(root, filepath.FromSlash(rel))
	fi, err := os.Lstat(full)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return nil // not a link: Write reports what it cannot read
	}
	target, err := os.Readlink(full)
	if err != nil {
		return err
	}
	out := &OutsideError{Link: rel, Target: target}
	if filepath.IsAbs(target) {
		return out
	}
	resolved, err := filepath.EvalSymlinks(full)
	if err != nil {
		// A dangling link is judged by its text: it may be made to exist
		// once unpacked, but only inside the release.
		lexical := path.Join(path.Dir(rel), filepath.ToSlash(target))
		if lexical == ".." || strings.HasPrefix(lexical, "../") {
			return out
		}
		return nil
	}
	if r, err := filepath.Rel(realRoot, resolved); err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return out
	}
	return nil
}

// outside names the artifact in an *OutsideError.
func outside(err error, artifact string) error {
	var oe *OutsideError
	if errors.As(err, &oe) {
		oe.Artifact = artifact
		return oe
	}
	return fmt.Errorf("artifact path %q: %w", artifact, err)
}
