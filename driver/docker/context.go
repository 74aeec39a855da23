package docker

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
)

// validTag is Docker's tag grammar.
var validTag = lazyre.New(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// outsideDockerfile is the name a Dockerfile outside the context gets in the
// context stream, as the docker CLI does with its own random name.
const outsideDockerfile = ".gantry.Dockerfile"

// contextEntries checks the context and the Dockerfile and returns whether
// the Dockerfile is inside the context and its name in the stream.
func contextEntries(ctxDir, dockerfile string) (inside bool, name string, err error) {
	if st, err := os.Stat(ctxDir); err != nil || !st.IsDir() {
		return false, "", gantry.Errorf(gantry.EINVALID, "image build: context %s is not a directory of the commit", filepath.Base(ctxDir))
	}
	if st, err := os.Stat(dockerfile); err != nil || !st.Mode().IsRegular() {
		return false, "", gantry.Errorf(gantry.EINVALID, "image build: the commit has no Dockerfile at %s", filepath.Base(dockerfile))
	}
	rel, err := filepath.Rel(ctxDir, dockerfile)
	if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return true, filepath.ToSlash(rel), nil
	}
	return false, outsideDockerfile, nil
}

// writeContext writes the context directory as an uncompressed tar stream,
// with fixed times and owners (so that unchanged files keep the engine's
// build cache), plus the Dockerfile when it lies outside the context.
func writeContext(w io.Writer, ctxDir string, inside bool, dockerfile, name string) error {
	ignore, err := readIgnore(filepath.Join(ctxDir, ".dockerignore"))
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	err = filepath.WalkDir(ctxDir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(ctxDir, p)
		if err != nil || rel == "." {
			return err
		}
		slash := filepath.ToSlash(rel)
		// The Dockerfile and .dockerignore go whatever the patterns say,
		// as with the docker CLI: the engine needs them.
		if slash != ".dockerignore" && !(inside && slash == name) && ignore.excluded(slash) {
			if de.IsDir() && !ignore.hasExceptions && !(inside && strings.HasPrefix(name, slash+"/")) {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		var link string
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		case fi.IsDir(), fi.Mode().IsRegular():
		default:
			return nil // sockets, devices: nothing a build can use
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.ModTime, hdr.AccessTime, hdr.ChangeTime = epoch, time.Time{}, time.Time{}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			return copyFile(tw, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("image build context: %w", err)
	}
	if !inside {
		b, err := os.ReadFile(dockerfile)
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: epoch, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := tw.Write(b); err != nil {
			return err
		}
	}
	return tw.Close()
}

func copyFile(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	if errors.Is(err, tar.ErrWriteTooLong) {
		return fmt.Errorf("%s changed while it was sent", p)
	}
	return err
}

// ignoreRules are the patterns of a context's .dockerignore.
type ignoreRules struct {
	rules         []ignoreRule
	hasExceptions bool
}

type ignoreRule struct {
	re        *regexp.Regexp
	exception bool // a "!pattern" line: include again
}

// readIgnore reads .dockerignore: one pattern a line, # comments, ! for
// exceptions, * and ? within a path segment, ** across segments. A missing
// file ignores nothing.
func readIgnore(path string) (ignoreRules, error) {
	var ir ignoreRules
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return ir, nil
	} else if err != nil {
		return ir, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := ignoreRule{}
		if strings.HasPrefix(line, "!") {
			r.exception, line = true, strings.TrimSpace(line[1:])
			ir.hasExceptions = true
		}
		line = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(line)), "/")
		re, err := ignoreRegexp(line)
		if err != nil {
			return ir, gantry.Errorf(gantry.EINVALID, "image build: .dockerignore pattern %q: %v", line, err)
		}
		r.re = re
		ir.rules = append(ir.rules, r)
	}
	return ir, nil
}

// ignoreRegexp turns a pattern into a regexp that matches a path or any
// path below it.
func ignoreRegexp(p string) (*regexp.Regexp, error) {
	var sb strings.Builder
	sb.WriteString("^")
	for i := 0; i < len(p); i++ {
		switch c := p[i]; {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' {
				i++
				sb.WriteString("(.*/)?") // **/ is zero or more directories
			} else {
				sb.WriteString(".*")
			}
		case c == '*':
			sb.WriteString("[^/]*")
		case c == '?':
			sb.WriteString("[^/]")
		default:
			sb.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	sb.WriteString("(/.*)?$")
	return regexp.Compile(sb.String())
}

// excluded applies the rules in order: the last one that matches decides.
func (ir ignoreRules) excluded(rel string) bool {
	out := false
	for _, r := range ir.rules {
		if r.re.MatchString(rel) {
			out = !r.exception
		}
	}
	return out
}
