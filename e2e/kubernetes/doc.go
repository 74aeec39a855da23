// Package kubernetes holds the end-to-end tests of the gantry binary on a
// real Kubernetes control plane (started by internal/k8stest); see
// kubernetes_test.go.
package kubernetes
