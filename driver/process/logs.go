package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/gantry-dev/gantry"
)

// followInterval is how often Logs looks for new output when following.
const followInterval = 150 * time.Millisecond

// rotateMu serialises rotations across every Driver value of the process:
// after a simulated or real restart two values may watch the same log.
var rotateMu sync.Mutex

func (d *Driver) logMax() int64 {
	if d.LogMaxBytes > 0 {
		return d.LogMaxBytes
	}
	return DefaultLogMaxBytes
}

// rotate copies the log to <log>.1 and truncates it once it is past
// LogMaxBytes. Renaming is not an option: the instance holds the file open
// and would keep writing to the renamed one. Truncating in place is safe
// because the instance writes with O_APPEND; what it writes between the copy
// and the truncation (a few microseconds) is lost, as with logrotate's
// copytruncate.
func (d *Driver) rotate(path string) error {
	rotateMu.Lock()
	defer rotateMu.Unlock()
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	if fi.Size() <= d.logMax() {
		return nil
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".1.tmp"
	dst, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path+".1")
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("rotate %s: %w", path, err)
	}
	return os.Truncate(path, 0)
}

// watch runs one rotation loop per instance until it ends: until done is
// closed for a child of this value, or until its process is gone for an
// attached one. It is the only background work the driver does.
func (d *Driver) watch(h handle, done <-chan struct{}) {
	key := h.key()
	d.mu.Lock()
	if d.watching == nil {
		d.watching = map[string]struct{}{}
	}
	if _, ok := d.watching[key]; ok {
		d.mu.Unlock()
		return
	}
	d.watching[key] = struct{}{}
	d.mu.Unlock()
	every := d.RotateInterval
	if every <= 0 {
		every = DefaultRotateInterval
	}
	go func() {
		defer func() {
			d.mu.Lock()
			delete(d.watching, key)
			d.mu.Unlock()
		}()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			if done == nil {
				if ls, err := leader(h.PID, h.StartTime); err != nil || ls != leaderRunning {
					return
				}
			}
			if err := d.rotate(h.Log); err != nil {
				d.logger().Warn("rotate instance log", attrPID, h.PID, attrError, err)
			}
		}
	}()
}

// Logs writes the last tail lines of the instance's current log file (all
// of it when tail <= 0) and, when follow, keeps writing what is appended
// until ctx ends, then returns nil.
//
// A follower notices a rotation by the .1 file being a new file; the end of
// the old content that it had not read yet is then read from .1. Only two
// rotations within one poll (150ms) would make it miss lines.
func (d *Driver) Logs(ctx context.Context, inst gantry.Instance, tail int, follow bool, w io.Writer) error {
	h, err := decodeHandle(inst)
	if err != nil {
		return err
	}
	if err := d.rotate(h.Log); err != nil {
		d.logger().Warn("rotate instance log", attrPID, h.PID, attrError, err)
	}
	f, err := os.Open(h.Log)
	if errors.Is(err, os.ErrNotExist) {
		return gantry.Errorf(gantry.ENOTFOUND, "%s has no log", describe(inst, h))
	} else if err != nil {
		return fmt.Errorf("logs %s: %w", describe(inst, h), err)
	}
	defer f.Close()
	old, size, err := snapshot(f, h.Log+".1")
	if err != nil {
		return fmt.Errorf("logs %s: %w", describe(inst, h), err)
	}
	start, err := tailOffset(f, size, tail)
	if err != nil {
		return fmt.Errorf("logs %s: %w", describe(inst, h), err)
	}
	n, err := copyRange(w, f, start, size)
	if err != nil || !follow {
		return err
	}
	off := start + n
	tick := time.NewTicker(followInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := d.rotate(h.Log); err != nil {
			d.logger().Warn("rotate instance log", attrPID, h.PID, attrError, err)
		}
		cur, size, err := snapshot(f, h.Log+".1")
		if err != nil {
			return err
		}
		if cur != nil && (old == nil || !os.SameFile(cur, old)) {
			if err := copyOld(w, h.Log+".1", off); err != nil {
				return err
			}
			off = 0
		} else if size < off {
			off = 0 // truncated by someone else: start over
		}
		old = cur
		n, err := copyRange(w, f, off, size)
		off += n
		if err != nil {
			return err
		}
	}
}

// snapshot returns the log's .1 file and the log's size as one consistent
// view: no rotation by this process runs in between.
func snapshot(f *os.File, oldPath string) (os.FileInfo, int64, error) {
	rotateMu.Lock()
	defer rotateMu.Unlock()
	old, err := os.Stat(oldPath)
	if errors.Is(err, os.ErrNotExist) {
		old = nil
	} else if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	return old, fi.Size(), nil
}

// copyOld writes what a rotation moved to the .1 file past offset off.
func copyOld(w io.Writer, path string, off int64) error {
	old, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	defer old.Close()
	fi, err := old.Stat()
	if err != nil {
		return err
	}
	if fi.Size() <= off {
		return nil
	}
	_, err = copyRange(w, old, off, fi.Size())
	return err
}

// copyRange copies bytes [from, to) of r and says how many it copied: fewer
// when a rotation truncated the file meanwhile, and the follower then reads
// the rest from the .1 file.
func copyRange(w io.Writer, r io.ReaderAt, from, to int64) (int64, error) {
	if to <= from {
		return 0, nil
	}
	return io.Copy(w, io.NewSectionReader(r, from, to-from))
}

// tailOffset returns where the last n lines of the first size bytes of r
// begin; 0 when n <= 0 or when there are fewer lines. A last line without
// its newline counts as a line.
func tailOffset(r io.ReaderAt, size int64, n int) (int64, error) {
	if n <= 0 || size <= 0 {
		return 0, nil
	}
	end := size
	last := make([]byte, 1)
	if _, err := r.ReadAt(last, size-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		end-- // the final newline ends the last line; it does not start one
	}
	buf := make([]byte, 32<<10)
	count := 0
	for pos := end; pos > 0; {
		m := int64(len(buf))
		if pos < m {
			m = pos
		}
		pos -= m
		if _, err := r.ReadAt(buf[:m], pos); err != nil && err != io.EOF {
			return 0, err
		}
		for i := m - 1; i >= 0; i-- {
			if buf[i] == '\n' {
				count++
				if count == n {
					return pos + i + 1, nil
				}
			}
		}
	}
	return 0, nil
}
