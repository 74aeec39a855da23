package kubernetes_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/kubernetes"
	"github.com/gantry-dev/gantry/internal/k8stest"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestTagImageStream: with runtime.images: imagestream, placing an image
// tags the environment's ImageStream <app>-<service> with the release's
// version from the image by digest (reference policy Local), an object the
// API server validates against OpenShift's definition; the image returned
// is the same digest from the internal registry, and a slot rolls out with
// it. A second version adds a tag and keeps the first; a stream that is not
// Gantry's is refused; an image by tag is refused.
func TestTagImageStream(t *testing.T) {
	c := k8stest.Need(t, cluster)
	ns := c.Namespace(t, "stream")
	d := newDriver(t, c, ns)
	ctx := ctxFor(t)
	rt := gantry.RuntimeSpec{Driver: "kubernetes", Images: gantry.ImagesImageStream}
	art := func(image string) gantry.Artifact {
		return gantry.Artifact{Kind: gantry.ArtifactImage, Image: image, Digest: image[strings.Index(image, "@")+1:]}
	}
	place := gantry.ImagePlace{App: "shop", Env: "prod", Service: "web", Version: "1.0.0+build.7", Runtime: rt}
	got, err := d.PlaceImage(ctx, art(imageV1), place)
	if err != nil {
		t.Fatal(err)
	}
	want := kubernetes.DefaultInternalRegistry + "/" + ns + "/shop-web@" + art(imageV1).Digest
	if got.Image != want || got.Digest != art(imageV1).Digest {
		t.Errorf("placed image %s (%s), want %s", got.Image, got.Digest, want)
	}
	place.Version = "1.1.0"
	if _, err := d.PlaceImage(ctx, art(imageV2), place); err != nil {
		t.Fatal(err)
	}
	streams := dynamicClient(t, c).Resource(kubernetes.ImageStreams).Namespace(ns)
	is, err := streams.Get(ctx, "shop-web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tags, _, _ := unstructured.NestedSlice(is.Object, "spec", "tags")
	from := map[string]string{}
	for _, x := range tags {
		m := x.(map[string]any)
		f := m["from"].(map[string]any)
		pol := m["referencePolicy"].(map[string]any)["type"]
		from[m["name"].(string)] = f["kind"].(string) + " " + f["name"].(string) + " " + pol.(string)
	}
	wantTags := map[string]string{"1.0.0-build.7": "DockerImage " + imageV1 + " Local", "1.1.0": "DockerImage " + imageV2 + " Local"}
	if !maps.Equal(from, wantTags) {
		t.Errorf("tags of ImageStream shop-web: %v, want %v", from, wantTags)
	}
	if is.GetLabels()[kubernetes.LabelManagedBy] != "gantry" {
		t.Errorf("ImageStream labels %v: not Gantry's", is.GetLabels())
	}

	// The slot runs the placed image: the internal registry, same digest.
	spec := webSpec(got.Image, "1.0.0")
	spec.Instances = 1
	MustStartSlot(t, d, slot("shop", "prod", gantry.SlotBlue, "1.0.0", spec))
	dep, err := c.Client.AppsV1().Deployments(ns).Get(ctx, "shop-web-blue", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := dep.Spec.Template.Spec.Containers[0].Image; img != want {
		t.Errorf("Deployment runs %s, want %s", img, want)
	}

	// Someone else's stream is not changed.
	other := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "image.openshift.io/v1", "kind": "ImageStream",
		"metadata": map[string]any{"name": "shop-api"}, "spec": map[string]any{}}}
	if _, err := streams.Create(ctx, other, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	place.Service = "api"
	if _, err := d.PlaceImage(ctx, art(imageV1), place); gantry.ErrorCode(err) != gantry.ECONFLICT {
		t.Errorf("tagging someone else's ImageStream: %v, want a conflict", err)
	}
	if _, err := d.PlaceImage(ctx, gantry.Artifact{Kind: gantry.ArtifactImage, Image: "registry.test/shop/web:1.0", Digest: "sha256:x"}, place); gantry.ErrorCode(err) != gantry.EINVALID {
		t.Errorf("tagging an image by tag: %v, want invalid", err)
	}
}
