// Package tarball writes and reads the deterministic gzipped tarballs that
// releases are made of: the same files always give the same bytes, so the
// same digest. It reads only what it wrote: entries outside the target
// directory and unusual file types are refused.
package tarball

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// epoch is the modification time written for every entry, so that the same
// files always give the same tarball and so the same digest.
var epoch = time.Unix(0, 0).UTC()

// Write writes a deterministic gzipped tarball of the given paths
// (files or directories, relative to root) to w: entries sorted by name, fixed
// times, owners and modes reduced to 0644/0755. Symlinks are kept as links.
func Write(w io.Writer, root string, paths []string) error {
	var names []string
	seen := map[string]bool{}
	for _, p := range paths {
		clean := path.Clean(filepath.ToSlash(p))
		if clean == ".." || strings.HasPrefix(clean, "../") || path.IsAbs(clean) {
			return fmt.Errorf("artifact path %q is outside the build directory", p)
		}
		err := filepath.WalkDir(filepath.Join(root, clean), func(full string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(root, full)
			if err != nil {
				return err
			}
			rel = filepath.ToSlash(rel)
			if rel == "." {
				return nil // the root itself (artifacts: [.]): it needs no entry
			}
			if !seen[rel] {
				seen[rel] = true
				names = append(names, rel)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("artifact path %q: %w", p, err)
		}
	}
	sort.Strings(names)
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	tw := tar.NewWriter(gz)
	for _, name := range names {
		full := filepath.Join(root, filepath.FromSlash(name))
		fi, err := os.Lstat(full)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name, ModTime: epoch, Format: tar.FormatPAX}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(full)
			if err != nil {
				return err
			}
			hdr.Typeflag, hdr.Linkname, hdr.Mode = tar.TypeSymlink, target, 0o777
		case fi.IsDir():
			hdr.Typeflag, hdr.Name, hdr.Mode = tar.TypeDir, name+"/", 0o755
		case fi.Mode().IsRegular():
			hdr.Typeflag, hdr.Size, hdr.Mode = tar.TypeReg, fi.Size(), 0o644
			if fi.Mode()&0o111 != 0 {
				hdr.Mode = 0o755
			}
		default:
			return fmt.Errorf("artifact %s: unsupported file type %s", name, fi.Mode().Type())
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			f, err := os.Open(full)
			if err != nil {
				return err
			}
			_, err = io.Copy(tw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}

// Extract unpacks a gzipped tarball written by Write into dir, refusing any
// entry that would land outside it.
func Extract(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	if err := ExtractTar(gz, dir); err != nil {
		return fmt.Errorf("extract: %w", err)
	}
	// Drain the gzip trailer so a truncated or corrupted stream is reported.
	_, err = io.Copy(io.Discard, gz)
	return err
}

// ExtractTar unpacks a plain tar stream: a release tarball once ungzipped, or
// git archive's output. Both are input (a crafted repository can be): an
// entry that would land outside dst, be written through a symlink, or
// replace a file already written is refused.
func ExtractTar(r io.Reader, dst string) error {
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
