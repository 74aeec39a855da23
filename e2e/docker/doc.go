// Package docker holds the end-to-end tests of image releases on a real
// Docker Engine; see docker_test.go.
package docker
