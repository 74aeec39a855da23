package main

import (
	"log/slog"
	"time"

	"github.com/gantry-dev/gantry/driver/docker"
	"github.com/gantry-dev/gantry/driver/kubernetes"
)

// openKubernetes connects the kubernetes driver to the cluster of
// kubeconfig ("" when no cluster is configured: the driver is then not
// offered). An environment's namespace is its runtime.namespace (the
// manifest's default is <app>-<env>); the driver creates it when missing.
func openKubernetes(kubeconfig string, progressDeadline time.Duration, logger *slog.Logger) (*kubernetes.Driver, error) {
	if kubeconfig == "" {
		return nil, nil
	}
	cfg, err := kubernetes.ConfigFromKubeconfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	d, err := kubernetes.New(cfg)
	if err != nil {
		return nil, err
	}
	d.Logger = logger
	d.ProgressDeadline = progressDeadline
	d.CreateNamespace = true
	d.CopyImage = docker.CopyImage // registry to registry, no engine needed
	return d, nil
}
