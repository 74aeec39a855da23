package kubernetes

import (
	"context"
	"strings"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/internal/lazyre"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/util/retry"
)

// How a release's image reaches an environment (gantry.ImagePlacer):
// pulled where the release names it, copied by digest into the
// environment's runtime.registry (CopyImage), or, with runtime.images:
// imagestream on OpenShift, tagged in the environment's image stream to the
// same digest, which is what `oc tag <image>@sha256:… <stream>:<tag>`
// writes. The workloads then run the image from the cluster's internal
// registry by that digest: what runs is byte for byte what ran before.

// DefaultInternalRegistry is where OpenShift's internal registry serves
// image streams to pods, when an image stream's status does not say.
const DefaultInternalRegistry = "image-registry.openshift-image-registry.svc:5000"

// ImageStreams is OpenShift's image stream resource (image.openshift.io/v1).
var ImageStreams = schema.GroupVersionResource{Group: "image.openshift.io", Version: "v1", Resource: "imagestreams"}

var _ gantry.ImagePlacer = (*Driver)(nil)

// PlaceImage implements gantry.ImagePlacer: by the environment's
// runtime.images, its image stream is tagged to a's digest, or a is copied
// into runtime.registry, or a runs as it is.
func (d *Driver) PlaceImage(ctx context.Context, a gantry.Artifact, to gantry.ImagePlace) (gantry.Artifact, error) {
	if a.Kind != gantry.ArtifactImage {
		return a, gantry.Errorf(gantry.EINVALID, "service %s: artifact of kind %q is not an image", to.Service, a.Kind)
	}
	switch {
	case to.Runtime.Images == gantry.ImagesImageStream:
		return d.TagImage(ctx, a, to)
	case to.Runtime.Registry == "" || strings.HasPrefix(a.Image, strings.TrimRight(to.Runtime.Registry, "/")+"/"):
		return a, nil
	case d.CopyImage == nil:
		return a, gantry.Errorf(gantry.EINVALID, "service %s: the image must be copied into registry %s, and this server cannot copy images", to.Service, to.Runtime.Registry)
	}
	ref, err := d.CopyImage(ctx, a.Image, strings.TrimRight(to.Runtime.Registry, "/")+"/"+to.Service)
	if err != nil {
		return a, err
	}
	a.Image = ref
	return a, nil
}

// TagImage tags the image stream <app>-<service> in the environment's
// namespace (created, labelled as Gantry's, when missing) with the
// release's version, from a's image by digest, reference policy Local, and
// returns a as the pods pull it: from the internal registry, by the same
// digest.
func (d *Driver) TagImage(ctx context.Context, a gantry.Artifact, to gantry.ImagePlace) (gantry.Artifact, error) {
	if !strings.HasPrefix(a.Digest, "sha256:") || !strings.HasSuffix(a.Image, "@"+a.Digest) {
		return a, gantry.Errorf(gantry.EINVALID, "service %s: image %q is not a reference by digest (repository@sha256:…); an image stream is tagged by digest only", to.Service, a.Image)
	}
	ns := d.namespace(to.Runtime, to.App, to.Env)
	if err := d.ensureNamespace(ctx, ns); err != nil {
		return a, err
	}
	name, tag := dnsName(to.App+"-"+to.Service), imageTag(to.Version)
	entry := map[string]any{
		"name":            tag,
		"from":            map[string]any{"kind": "DockerImage", "name": a.Image},
		"referencePolicy": map[string]any{"type": "Local"},
		"annotations":     map[string]any{AnnotationRelease: to.Version},
	}
	res := d.Client.dynamic.Resource(ImageStreams).Namespace(ns)
	var repo string
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cur, err := res.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			cur = &unstructured.Unstructured{Object: map[string]any{
				"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
				"metadata": map[string]any{"name": name, "namespace": ns, "labels": map[string]any{
					LabelManagedBy: managedBy, LabelApp: labelValue(to.App), LabelService: labelValue(to.Service)}},
				"spec": map[string]any{"lookupPolicy": map[string]any{"local": true}, "tags": []any{entry}},
			}}
			cur, err = res.Create(ctx, cur, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(ImageStreams.GroupResource(), name, err)
			}
		} else if err == nil {
			if cur.GetLabels()[LabelManagedBy] != managedBy {
				return gantry.Errorf(gantry.ECONFLICT, "kubernetes: ImageStream %s/%s exists and is not managed by gantry (label %s=%s missing); tag it yourself or let Gantry own it", ns, name, LabelManagedBy, managedBy)
			}
			tags, _, _ := unstructured.NestedSlice(cur.Object, "spec", "tags")
			kept := []any{entry}
			for _, t := range tags {
				if m, ok := t.(map[string]any); !ok || m["name"] != tag {
					kept = append(kept, t)
				}
			}
			if err = unstructured.SetNestedSlice(cur.Object, kept, "spec", "tags"); err == nil {
				cur, err = res.Update(ctx, cur, metav1.UpdateOptions{})
			}
		}
		if err == nil {
			repo, _, _ = unstructured.NestedString(cur.Object, "status", "dockerImageRepository")
		}
		return err
	})
	if err != nil {
		if c := gantry.ErrorCode(err); c != "" && c != gantry.EINTERNAL {
			return a, err
		}
		return a, apiError(err, "tag ImageStream %s/%s:%s", ns, name, tag)
	}
	if repo == "" {
		registry := d.InternalRegistry
		if registry == "" {
			registry = DefaultInternalRegistry
		}
		repo = registry + "/" + ns + "/" + name
	}
	d.logger().Info("kubernetes: image stream tagged", "namespace", ns, "stream", name, "tag", tag, "from", a.Image)
	a.Image = repo + "@" + a.Digest
	return a, nil
}

var notTag = lazyre.New(`[^A-Za-z0-9_.-]+`)

// imageTag is a release version as an image stream tag: [A-Za-z0-9_.-],
// not starting with '.' or '-', at most 128 characters.
func imageTag(version string) string {
	t := strings.TrimLeft(notTag.ReplaceAllString(version, "-"), ".-")
	if len(t) > 128 {
		t = t[:128]
	}
	if t == "" {
		t = "latest"
	}
	return t
}
