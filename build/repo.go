package build

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
)

var _ gantry.RepoChecker = (*Builder)(nil)

// repoCheckTimeout bounds the question asked of a remote repository when an
// app is registered: a registration must not hang on an unreachable host.
const repoCheckTimeout = 30 * time.Second

// CheckRepo makes sure repo is a git repository this server can read, so
// that an app is not registered with a typo that only its first build
// would reveal. A local path must be the top of a work tree or a git
// directory (a bare repository), not a file, a plain directory or a
// directory inside someone else's work tree; a URL must answer git
// ls-remote. It does not fetch anything.
func (b *Builder) CheckRepo(ctx context.Context, repo string) error {
	if strings.HasPrefix(repo, "-") || strings.ContainsAny(repo, "\x00\n") {
		return gantry.Errorf(gantry.EINVALID, "repository %q is not a path or URL git accepts", repo)
	}
	ctx, cancel := context.WithTimeout(ctx, repoCheckTimeout)
	defer cancel()
	if isRemote(repo) {
		if _, err := git(ctx, ".", "ls-remote", "--", repo, "HEAD"); err != nil {
			if ctx.Err() != nil {
				return gantry.Errorf(gantry.EINVALID, "repository %s did not answer git ls-remote within %s", repo, repoCheckTimeout)
			}
			return gantry.Errorf(gantry.EINVALID, "repository %s cannot be read by the server: %s", repo, errMessage(err))
		}
		return nil
	}
	if !filepath.IsAbs(repo) {
		return gantry.Errorf(gantry.EINVALID, "repository %s: a local repository is an absolute path on the server", repo)
	}
	fi, err := os.Stat(repo)
	switch {
	case os.IsNotExist(err):
		return gantry.Errorf(gantry.EINVALID, "repository %s does not exist on the server", repo)
	case err != nil:
		return gantry.Errorf(gantry.EINVALID, "repository %s cannot be read by the server: %v", repo, err)
	case !fi.IsDir():
		return gantry.Errorf(gantry.EINVALID, "repository %s is a file, not a git repository", repo)
	}
	out, err := git(ctx, repo, "rev-parse", "--is-inside-git-dir", "--absolute-git-dir", "--show-prefix")
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return gantry.Errorf(gantry.EINVALID, "%s is not a git repository the server can read: %s", repo, errMessage(err))
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	inGitDir := len(lines) > 0 && lines[0] == "true"
	gitDir, prefix := "", ""
	if len(lines) > 1 {
		gitDir = lines[1]
	}
	if len(lines) > 2 {
		prefix = lines[2]
	}
	// git answers from any directory below a repository too; building
	// from there would build the enclosing repository, which is not what
	// the path says.
	if inGitDir {
		if real, err := filepath.EvalSymlinks(repo); err != nil || filepath.Clean(real) != filepath.Clean(gitDir) {
			return gantry.Errorf(gantry.EINVALID, "%s is inside the git directory %s, not a repository of its own", repo, gitDir)
		}
		return nil
	}
	if prefix != "" {
		top := "its top directory"
		if out, err := git(ctx, repo, "rev-parse", "--show-toplevel"); err == nil {
			top = strings.TrimSpace(string(out))
		}
		return gantry.Errorf(gantry.EINVALID, "%s is the directory %s inside a git repository, not a repository of its own; give %s", repo, prefix, top)
	}
	return nil
}
