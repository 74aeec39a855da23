package docker

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"

	"github.com/gantry-dev/gantry"
)

// registryAuth is the X-Registry-Auth of anonymous registry access. Older
// engines refuse a push without the header.
var registryAuth = base64.URLEncoding.EncodeToString([]byte("{}"))

// ImageBuild asks for one service's image.
type ImageBuild struct {
	// Dir is the clean export of the commit, never a working tree.
	// Dockerfile and Context are relative to it (manifest.md).
	Dir        string
	Dockerfile string // default "Dockerfile"
	Context    string // default "."
	Target     string
	Args       map[string]string
	// Repository is where the image goes, without a tag:
	// <environment registry>/<service>, e.g. 127.0.0.1:5000/shop/web.
	Repository string
	// Tags are pushed to Repository: the version, git-<sha7> and latest.
	Tags []string
	// App labels the image (LabelImageApp), which marks it as Gantry's for Prune.
	App      string
	Labels   map[string]string
	Progress io.Writer // the builder's output, line by line; may be nil
}

// BuildImage builds the image with the engine (the context is sent as a tar
// stream, so the engine may be remote), tags it with every tag, pushes each
// to the repository, and returns the image artifact by digest:
// Image "repository@sha256:…", Digest "sha256:…" (the manifest's digest).
func (d *Driver) BuildImage(ctx context.Context, b ImageBuild) (gantry.Artifact, error) {
	if b.Repository == "" || len(b.Tags) == 0 {
		return gantry.Artifact{}, gantry.Errorf(gantry.EINVALID, "image build: a repository and at least one tag are required")
	}
	if strings.Contains(b.Repository, "@") || strings.Contains(b.Repository[strings.LastIndex(b.Repository, "/")+1:], ":") {
		return gantry.Artifact{}, gantry.Errorf(gantry.EINVALID, "image build: repository %q must not carry a tag or digest", b.Repository)
	}
	for _, t := range b.Tags {
		if !validTag.MatchString(t) {
			return gantry.Artifact{}, gantry.Errorf(gantry.EINVALID, "image build: %q is not a valid image tag", t)
		}
	}
	ctxDir, dockerfile, err := buildPaths(b)
	if err != nil {
		return gantry.Artifact{}, err
	}
	out := b.Progress
	if out == nil {
		out = io.Discard
	}
	refs := make([]string, len(b.Tags))
	for i, t := range b.Tags {
		refs[i] = b.Repository + ":" + t
	}
	labels := map[string]string{}
	for k, v := range b.Labels {
		labels[k] = v
	}
	if b.App != "" {
		labels[LabelImageApp] = b.App
	}
	args := map[string]*string{}
	for k, v := range b.Args {
		args[k] = &v
	}
	start := time.Now()
	inside, dfName, err := contextEntries(ctxDir, dockerfile)
	if err != nil {
		return gantry.Artifact{}, err
	}
	pr, pw := io.Pipe()
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		pw.CloseWithError(writeContext(pw, ctxDir, inside, dockerfile, dfName))
	}()
	// The export is removed once the build returns: the writer must be done.
	defer func() { pr.CloseWithError(io.ErrClosedPipe); <-sent }()
	resp, err := d.Client.ImageBuild(ctx, pr, build.ImageBuildOptions{
		Tags:        refs,
		Dockerfile:  dfName,
		Target:      b.Target,
		BuildArgs:   args,
		Labels:      labels,
		Remove:      true,
		ForceRemove: true,
		Version:     build.BuilderV1,
	})
	if err != nil {
		return gantry.Artifact{}, fmt.Errorf("image build: %w", err)
	}
	_, err = readStream(resp.Body, out, 20)
	resp.Body.Close()
	if err != nil {
		return gantry.Artifact{}, gantry.Errorf(gantry.EFAILED, "image build of %s failed: %v", b.Repository, err)
	}
	fmt.Fprintf(out, "built %s in %s\n", b.Repository, time.Since(start).Round(time.Millisecond))

	var digest string
	for _, ref := range refs {
		dg, err := d.push(ctx, ref, out)
		if err != nil {
			return gantry.Artifact{}, err
		}
		if digest != "" && dg != digest {
			return gantry.Artifact{}, gantry.Errorf(gantry.EINTERNAL, "push of %s gave digest %s, another tag gave %s", ref, dg, digest)
		}
		digest = dg
	}
	a := gantry.Artifact{Kind: gantry.ArtifactImage, Digest: digest, Image: b.Repository + "@" + digest}
	if info, err := d.Client.ImageInspect(ctx, a.Image); err == nil {
		a.Size = info.Size
	} else {
		return gantry.Artifact{}, fmt.Errorf("image build: the engine does not know %s after the push: %w", a.Image, err)
	}
	d.logger().Info("image built and pushed", attrImage, a.Image, "tags", strings.Join(b.Tags, ","), "elapsed", time.Since(start).Round(time.Millisecond))
	return a, nil
}

// push pushes one tagged reference and returns the digest the registry
// computed for its manifest.
func (d *Driver) push(ctx context.Context, ref string, out io.Writer) (string, error) {
	rc, err := d.Client.ImagePush(ctx, ref, image.PushOptions{RegistryAuth: registryAuth})
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	defer rc.Close()
	aux, err := readStream(rc, io.Discard, 5)
	if err != nil {
		return "", gantry.Errorf(gantry.EFAILED, "push %s failed: %v", ref, err)
	}
	for _, a := range aux {
		var pushed struct{ Tag, Digest string }
		if json.Unmarshal(a, &pushed) == nil && strings.HasPrefix(pushed.Digest, "sha256:") {
			fmt.Fprintf(out, "pushed %s: %s\n", ref, pushed.Digest)
			return pushed.Digest, nil
		}
	}
	return "", gantry.Errorf(gantry.EFAILED, "push %s: the engine reported no digest", ref)
}

// ensureImage makes the engine have ref (repository@sha256:…), pulling it
// when it lacks it; the engine checks the digest of what it pulls. One pull
// per reference at a time: instances of a slot start together.
func (d *Driver) ensureImage(ctx context.Context, ref string) error {
	if _, err := d.Client.ImageInspect(ctx, ref); err == nil {
		return nil
	}
	mu := d.pullLock(ref)
	mu.Lock()
	defer mu.Unlock()
	if _, err := d.Client.ImageInspect(ctx, ref); err == nil {
		return nil
	}
	start := time.Now()
	rc, err := d.Client.ImagePull(ctx, ref, image.PullOptions{RegistryAuth: registryAuth})
	if err != nil {
		return gantry.Errorf(gantry.EFAILED, "pull %s: %v", ref, err)
	}
	defer rc.Close()
	if _, err := readStream(rc, io.Discard, 5); err != nil {
		return gantry.Errorf(gantry.EFAILED, "pull %s: %v", ref, err)
	}
	if _, err := d.Client.ImageInspect(ctx, ref); err != nil {
		return gantry.Errorf(gantry.EFAILED, "pull %s: the engine does not have it after the pull: %v", ref, err)
	}
	d.logger().Info("image pulled", attrImage, ref, "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

func (d *Driver) pullLock(ref string) *sync.Mutex {
	d.pullMu.Lock()
	defer d.pullMu.Unlock()
	if d.pulls == nil {
		d.pulls = map[string]*sync.Mutex{}
	}
	mu, ok := d.pulls[ref]
	if !ok {
		mu = &sync.Mutex{}
		d.pulls[ref] = mu
	}
	return mu
}

// streamMessage is one line of the engine's JSON progress streams (build,
// push, pull).
type streamMessage struct {
	Stream      string          `json:"stream"`
	Status      string          `json:"status"`
	Aux         json.RawMessage `json:"aux"`
	Error       string          `json:"error"`
	ErrorDetail *struct {
		Message string `json:"message"`
	} `json:"errorDetail"`
}

// readStream copies a progress stream's text to out and returns its aux
// messages, or the stream's error with the last keep lines of text before it.
func readStream(r io.Reader, out io.Writer, keep int) ([]json.RawMessage, error) {
	dec := json.NewDecoder(bufio.NewReader(r))
	var aux []json.RawMessage
	var last []string
	for {
		var m streamMessage
		if err := dec.Decode(&m); err == io.EOF {
			return aux, nil
		} else if err != nil {
			return aux, fmt.Errorf("read the engine's progress: %w", err)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			m.Error = m.ErrorDetail.Message
		}
		if m.Error != "" {
			msg := strings.TrimSpace(m.Error)
			if len(last) > 0 {
				msg += "; last output:\n" + strings.Join(last, "\n")
			}
			return aux, fmt.Errorf("%s", msg)
		}
		if len(m.Aux) > 0 {
			aux = append(aux, m.Aux)
		}
		if text := strings.TrimRight(m.Stream, "\n"); text != "" {
			fmt.Fprintln(out, text)
			last = append(last, strings.Split(text, "\n")...)
			if len(last) > keep {
				last = last[len(last)-keep:]
			}
		}
	}
}

// buildPaths resolves the context directory and the Dockerfile inside the
// export, refusing paths that leave it.
func buildPaths(b ImageBuild) (ctxDir, dockerfile string, err error) {
	if b.Dir == "" {
		return "", "", gantry.Errorf(gantry.EINVALID, "image build: no export directory")
	}
	rel := func(p, def string) (string, error) {
		if p == "" {
			p = def
		}
		c := filepath.Clean(filepath.FromSlash(p))
		if filepath.IsAbs(c) || c == ".." || strings.HasPrefix(c, ".."+string(filepath.Separator)) {
			return "", gantry.Errorf(gantry.EINVALID, "image build: path %q leaves the repository", p)
		}
		return filepath.Join(b.Dir, c), nil
	}
	if ctxDir, err = rel(b.Context, "."); err != nil {
		return "", "", err
	}
	if dockerfile, err = rel(b.Dockerfile, "Dockerfile"); err != nil {
		return "", "", err
	}
	return ctxDir, dockerfile, nil
}
