package dbchange

import (
	"bytes"
	"io"
	"io/fs"
	"path"
	"time"

	"github.com/gantry-dev/gantry"
)

// localMigration is one migration of a release, as an engine read it.
type localMigration struct {
	src gantry.MigrationSource
	// schema is what an app that knows this migration sets as search_path.
	schema string
}

// singleFile is an fs.FS holding one file, so that a migration kept in a
// plan (bytes) can go through pgroll's file reader, which infers the format
// from the name.
type singleFile struct {
	name string
	data []byte
}

func (s singleFile) Open(name string) (fs.File, error) {
	if name != s.name {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return &memFile{name: path.Base(name), r: bytes.NewReader(s.data), size: int64(len(s.data))}, nil
}

type memFile struct {
	name string
	r    *bytes.Reader
	size int64
}

func (f *memFile) Stat() (fs.FileInfo, error) { return memInfo{f.name, f.size}, nil }
func (f *memFile) Read(p []byte) (int, error) { return f.r.Read(p) }
func (f *memFile) Close() error               { return nil }

var _ io.Reader = (*memFile)(nil)

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o444 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }
