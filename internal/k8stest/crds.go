package k8stest

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"

	"gopkg.in/yaml.v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
)

// crdFiles are the CustomResourceDefinitions of APIs that are not part of
// Kubernetes but that Gantry writes to: OpenShift's Route, ImageStream and
// ImageStreamTag, Gateway API's HTTPRoute. Each file says where its schema
// comes from.
//
//go:embed crds/*.yaml
var crdFiles embed.FS

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// installCRDs creates the definitions and waits until the API server
// serves each one (its Established condition).
func (c *Cluster) installCRDs(ctx context.Context) error {
	dc, err := dynamic.NewForConfig(c.Config)
	if err != nil {
		return err
	}
	crds := dc.Resource(crdResource)
	paths, err := fs.Glob(crdFiles, "crds/*.yaml")
	if err != nil {
		return err
	}
	for _, p := range paths {
		objs, err := readObjects(p)
		if err != nil {
			return err
		}
		for _, obj := range objs {
			if err := c.installCRD(ctx, crds, obj); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	return nil
}

// installCRD creates one definition and waits until it is served.
func (c *Cluster) installCRD(ctx context.Context, crds dynamic.NamespaceableResourceInterface, obj *unstructured.Unstructured) error {
	if _, err := crds.Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create %s: %w", obj.GetName(), err)
	}
	name := obj.GetName()
	return c.poll(ctx, "CRD "+name+" established", "kube-apiserver", func() bool {
		cur, err := crds.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false
		}
		conds, _, _ := unstructured.NestedSlice(cur.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if m["type"] == "Established" && m["status"] == "True" {
				return true
			}
		}
		return false
	})
}

// readObjects reads the YAML documents of an embedded file.
func readObjects(path string) ([]*unstructured.Unstructured, error) {
	b, err := crdFiles.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err == io.EOF {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		j, err := json.Marshal(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		obj := &unstructured.Unstructured{}
		if err := obj.UnmarshalJSON(j); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, obj)
	}
}
