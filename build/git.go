package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
)

// gitEnv keeps git from prompting for credentials (a build has no terminal)
// and makes its messages parseable.
var gitEnv = []string{"GIT_TERMINAL_PROMPT=0", "LC_ALL=C"}

// git runs git in dir and returns its stdout. The error carries git's stderr,
// which is where it says what went wrong.
func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
	cmd.Env = append(os.Environ(), gitEnv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return stdout.Bytes(), &gitError{args: args, msg: msg, err: err}
	}
	return stdout.Bytes(), nil
}

type gitError struct {
	args []string
	msg  string
	err  error
}

func (e *gitError) Error() string { return fmt.Sprintf("git %s: %s", e.args[0], e.msg) }
func (e *gitError) Unwrap() error { return e.err }

// scpLikeRE matches git's scp-like remote syntax, user@host:path.
var scpLikeRE = lazyre.New(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:`)

// isRemote reports whether repo names a remote repository rather than a
// local path.
func isRemote(repo string) bool {
	return strings.Contains(repo, "://") || scpLikeRE.MatchString(repo)
}

var fullSHARE = lazyre.New(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// checkRef refuses refs git would read as options, and empty ones.
func checkRef(ref string) (string, error) {
	if ref == "" {
		ref = "HEAD"
	}
	if strings.HasPrefix(ref, "-") || strings.ContainsAny(ref, " \t\n\x00") {
		return "", gantry.Errorf(gantry.EINVALID, "ref %q is not a valid git ref", ref)
	}
	return ref, nil
}

// checkLocalRepo makes sure dir is a git repository, so that a typo in a path
// is not reported as a missing ref.
func checkLocalRepo(ctx context.Context, dir string) error {
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return gantry.Errorf(gantry.ENOTFOUND, "repository %s not found", dir)
	}
	if _, err := git(ctx, dir, "rev-parse", "--git-dir"); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return gantry.Errorf(gantry.EINVALID, "%s is not a git repository", dir)
	}
	return nil
}

// revParse resolves ref in a local (or mirrored) repository, falling back to
// the remote-tracking branch origin/<ref> so that a branch that was fetched
// but never checked out still resolves.
func revParse(ctx context.Context, dir, ref string) (string, error) {
	tried := []string{ref}
	candidates := []string{ref}
	if ref != "HEAD" && !strings.HasPrefix(ref, "origin/") && !strings.HasPrefix(ref, "refs/") {
		candidates = append(candidates, "origin/"+ref)
		tried = append(tried, "origin/"+ref)
	}
	for _, c := range candidates {
		out, err := git(ctx, dir, "rev-parse", "--verify", "--quiet", c+"^{commit}")
		if err == nil {
			return strings.TrimSpace(string(out)), nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
	}
	return "", gantry.Errorf(gantry.ENOTFOUND, "ref %q not found in %s (tried %s)", ref, dir, strings.Join(tried, ", "))
}

// commitTime returns the committer time of commit: where a release's lead
// time starts.
func commitTime(ctx context.Context, dir, commit string) (time.Time, error) {
	out, err := git(ctx, dir, "show", "-s", "--format=%cI", commit)
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time of %s: %w", shortSHA(commit), err)
	}
	t, err := time.Parse(time.RFC3339, strings.TrimSpace(string(out)))
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time of %s: %w", shortSHA(commit), err)
	}
	return t.UTC(), nil
}

// Resolve returns the full commit sha of ref ("HEAD" when empty) in repo, so
// a caller can ask "was this commit built already?" before building. A local
// repo is asked directly. A remote one is asked with git ls-remote, which
// knows branches and tags only: a commit id is returned as given and checked
// when Builder.Build fetches it (Builder.Resolve checks it at once).
func Resolve(ctx context.Context, repo, ref string) (string, error) {
	ref, err := checkRef(ref)
	if err != nil {
		return "", err
	}
	if !isRemote(repo) {
		if err := checkLocalRepo(ctx, repo); err != nil {
			return "", err
		}
		return revParse(ctx, repo, ref)
	}
	if fullSHARE.MatchString(ref) {
		return ref, nil
	}
	patterns := []string{ref, ref + "^{}"}
	out, err := git(ctx, ".", append([]string{"ls-remote", "--", repo}, patterns...)...)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", gantry.Errorf(gantry.EUNAVAILABLE, "repository %s: %s", repo, errMessage(err))
	}
	// ls-remote matches patterns as ref-name suffixes: prefer, in order, the
	// exact name, a branch, and a tag's peeled commit over the tag object.
	found := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		sha, name, ok := strings.Cut(line, "\t")
		if ok {
			found[name] = sha
		}
	}
	for _, name := range []string{ref, "refs/heads/" + ref, "refs/tags/" + ref + "^{}", "refs/tags/" + ref} {
		if sha, ok := found[name]; ok {
			return sha, nil
		}
	}
	return "", gantry.Errorf(gantry.ENOTFOUND, "ref %q not found in %s (tried %s, refs/heads/%s, refs/tags/%s)", ref, repo, ref, ref, ref)
}

// Resolve is like the package's Resolve, but a remote repository is first
// mirrored into the build cache, so any commit id is checked too.
func (b *Builder) Resolve(ctx context.Context, repo, ref string) (string, error) {
	dir, err := b.gitDir(ctx, repo)
	if err != nil {
		return "", err
	}
	ref, err = checkRef(ref)
	if err != nil {
		return "", err
	}
	return revParse(ctx, dir, ref)
}

// gitDir returns where git commands about repo run: the repo itself when it
// is local, or an up-to-date bare mirror of it under WorkDir.
func (b *Builder) gitDir(ctx context.Context, repo string) (string, error) {
	if !isRemote(repo) {
		if err := checkLocalRepo(ctx, repo); err != nil {
			return "", err
		}
		return repo, nil
	}
	if b.WorkDir == "" {
		return "", gantry.Errorf(gantry.EINTERNAL, "builder has no work directory for the mirror of %s", repo)
	}
	sum := sha256.Sum256([]byte(repo))
	dir := filepath.Join(b.WorkDir, "mirrors", hex.EncodeToString(sum[:8])+".git")

	// Two builds of one repository must not fetch into the same mirror at
	// once; builds of different repositories do not wait for each other.
	mu := b.mirrorLock(dir)
	mu.Lock()
	defer mu.Unlock()

	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		if _, err := git(ctx, dir, "fetch", "--prune", "--quiet", "origin"); err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			return "", gantry.Errorf(gantry.EUNAVAILABLE, "fetch %s: %s", repo, errMessage(err))
		}
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	// Clone beside the final place and rename, so that an interrupted clone
	// never leaves a half mirror that later fetches would trust.
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "clone-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if _, err := git(ctx, ".", "clone", "--mirror", "--quiet", "--", repo, tmp); err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", gantry.Errorf(gantry.EUNAVAILABLE, "clone %s: %s", repo, errMessage(err))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// showFile returns a file of the commit, and ok=false when the commit has no
// such file.
func showFile(ctx context.Context, dir, commit, name string) (data []byte, ok bool, err error) {
	// ls-tree tells "absent" apart from a failing git, which show does not.
	out, err := git(ctx, dir, "ls-tree", "--name-only", commit, "--", name)
	if err != nil {
		return nil, false, err
	}
	if strings.TrimSpace(string(out)) != name {
		return nil, false, nil
	}
	data, err = git(ctx, dir, "cat-file", "blob", commit+":"+name)
	if err != nil {
		return nil, false, err
	}
	return data, true, nil
}

// tagsAt lists the tags that point at commit, lightweight and annotated.
func tagsAt(ctx context.Context, dir, commit string) ([]string, error) {
	out, err := git(ctx, dir, "tag", "--points-at", commit)
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// headBranch names the branch HEAD is on, or "" when it is detached or the
// repository is a mirror.
func headBranch(ctx context.Context, dir string) string {
	out, err := git(ctx, dir, "symbolic-ref", "--quiet", "--short", "HEAD")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// errMessage is err's message without the gantry error decoration.
func errMessage(err error) string {
	var ge *gantry.Error
	if errors.As(err, &ge) {
		return ge.Message
	}
	return err.Error()
}

// CommitTime returns the committer time of commit in repo: where the lead
// time of a release imported from an outside CI starts.
func (b *Builder) CommitTime(ctx context.Context, repo, commit string) (time.Time, error) {
	dir, err := b.gitDir(ctx, repo)
	if err != nil {
		return time.Time{}, err
	}
	return commitTime(ctx, dir, commit)
}

// Manifest resolves ref in repo and returns its commit, the raw gantry.yml of
// that commit and the decoded manifest: what a release imported from an
// outside CI records, without building anything.
func (b *Builder) Manifest(ctx context.Context, repo, ref string) (string, []byte, *gantry.Manifest, error) {
	dir, err := b.gitDir(ctx, repo)
	if err != nil {
		return "", nil, nil, err
	}
	if ref, err = checkRef(ref); err != nil {
		return "", nil, nil, err
	}
	commit, err := revParse(ctx, dir, ref)
	if err != nil {
		return "", nil, nil, err
	}
	raw, m, err := b.readManifest(ctx, dir, commit)
	return commit, raw, m, err
}
