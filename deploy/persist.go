package deploy

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry"
)

// Persistent directories (services.<service>.persist) belong to the
// environment, not to a release or a slot: one directory per name under
// PersistRoot/<DataID>, created when an instance first needs it, given to
// every instance of both slots, kept through a rename (the DataID stays),
// copied by a clone with --with-data, removed only by a delete with --purge.

// persistDirs returns the persistent directories of svc in env by name,
// creating them (and env's DataID) when needed.
func (o *Orchestrator) persistDirs(ctx context.Context, env *gantry.Environment, svc *gantry.Service) (map[string]string, error) {
	if len(svc.Persist) == 0 {
		return nil, nil
	}
	if o.PersistRoot == "" {
		return nil, gantry.Errorf(gantry.EINVALID, "service %s declares persistent directories (%s), and this server keeps none", svc.Name, strings.Join(svc.Persist, ", "))
	}
	if err := o.ensureDataID(ctx, env); err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, name := range svc.Persist {
		dir := gantry.PersistDir(o.PersistRoot, env.DataID, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("persistent directory %s: %w", name, err)
		}
		out[name] = dir
	}
	return out, nil
}

// ensureDataID gives env the identity of its persistent directories.
func (o *Orchestrator) ensureDataID(ctx context.Context, env *gantry.Environment) error {
	if env.DataID != "" {
		return nil
	}
	env.DataID = env.App + "-" + env.Name + "-" + strconv.FormatInt(o.now().UnixNano(), 36)
	return o.saveEnv(ctx, env)
}

// withPersistVars returns vars with GANTRY_PERSIST_<NAME> for each of dirs.
func withPersistVars(vars, dirs map[string]string) map[string]string {
	out := maps.Clone(vars)
	for name, dir := range dirs {
		out[gantry.PersistVar(name)] = dir
	}
	return out
}

// hasPersist says whether m declares a persistent directory.
func hasPersist(m *gantry.Manifest) bool {
	for _, s := range m.Services {
		if len(s.Persist) > 0 {
			return true
		}
	}
	return false
}

// copyPersist copies src's persistent directories into dst's (a clone
// with --with-data), before dst's instances start.
func (o *Orchestrator) copyPersist(ctx context.Context, r *run, src, dst *gantry.Environment) error {
	return r.step(ctx, "copy-files", src.Name+" → "+dst.Name, func() (string, error) {
		if src.DataID == "" {
			return "nothing written yet", nil
		}
		if err := o.ensureDataID(ctx, dst); err != nil {
			return "", err
		}
		from, to := filepath.Join(o.PersistRoot, src.DataID), filepath.Join(o.PersistRoot, dst.DataID)
		n, size, err := copyTree(from, to)
		if err != nil {
			return "", fmt.Errorf("copy persistent directories: %w", err)
		}
		return fmt.Sprintf("%d files, %d bytes", n, size), nil
	})
}

// copyTree copies the regular files, directories and symbolic links under
// from into to.
func copyTree(from, to string) (files int, size int64, err error) {
	err = filepath.WalkDir(from, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p == from {
				return filepath.SkipAll
			}
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case d.Type().IsRegular():
			n, err := copyFile(p, target, info.Mode().Perm())
			files++
			size += n
			return err
		}
		return nil // sockets, devices: not data
	})
	return files, size, err
}

func copyFile(from, to string, mode fs.FileMode) (int64, error) {
	in, err := os.Open(from)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// persistPurger is a runtime that keeps persistent directories of its
// own (Kubernetes: PersistentVolumeClaims) and removes them when told.
type persistPurger interface {
	PurgePersist(ctx context.Context, ref gantry.SlotRef) error
}

// persistCopier is a runtime that keeps persistent directories of its
// own and copies an environment's into another's (a clone with
// --with-data): Kubernetes runs a Job.
type persistCopier interface {
	CopyPersist(ctx context.Context, from, to gantry.SlotRef, names []string) (string, error)
}

// persistNames are the persistent directories m's services declare, each
// once, sorted.
func persistNames(m *gantry.Manifest) []string {
	var out []string
	for _, s := range m.Services {
		out = append(out, s.Persist...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// copyRuntimePersist is a clone's "files" step on a runtime that keeps
// the directories itself: the runtime copies src's into dst's, before
// dst's first slot starts; a runtime that cannot says so, and dst's start
// empty.
func (o *Orchestrator) copyRuntimePersist(ctx context.Context, r *run, drv gantry.Driver, src, dst *gantry.Environment, m *gantry.Manifest) error {
	return r.step(ctx, "files", src.Name+" → "+dst.Name, func() (string, error) {
		c, ok := drv.(persistCopier)
		if !ok {
			return fmt.Sprintf("not copied: the %s runtime cannot copy persistent directories; the new environment's directories start empty", dst.Spec.Runtime.Driver), nil
		}
		return c.CopyPersist(ctx, slotRef(src, ""), slotRef(dst, ""), persistNames(m))
	})
}

// purgePersist removes env's persistent directories: the runtime's own,
// when drv keeps them, else the server's.
func (o *Orchestrator) purgePersist(ctx context.Context, drv gantry.Driver, env *gantry.Environment) error {
	if p, ok := drv.(persistPurger); ok {
		return p.PurgePersist(ctx, slotRef(env, ""))
	}
	if env.DataID == "" || o.PersistRoot == "" {
		return nil
	}
	return os.RemoveAll(filepath.Join(o.PersistRoot, env.DataID))
}
