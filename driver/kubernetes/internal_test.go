package kubernetes

import (
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

var update = flag.Bool("update", false, "rewrite golden files")

const testImage = "registry.test/shop/web@sha256:1111111111111111111111111111111111111111111111111111111111111111"

func testSpec() gantry.InstanceSpec {
	return gantry.InstanceSpec{
		App: "shop", Env: "prod", Slot: "green", Service: "web", ReleaseID: "3.1.0+g1a2b3c",
		Artifact: gantry.Artifact{Kind: gantry.ArtifactImage, Image: testImage, Digest: testImage[strings.Index(testImage, "@")+1:]},
		Command:  "bin/web --log-level info",
		Port:     8080,
		Health:   gantry.HealthCheck{Path: "/up", Interval: 1500 * time.Millisecond, Timeout: 2 * time.Second, HealthyAfter: 2},
		Stop:     gantry.StopSpec{Signal: "SIGTERM", Timeout: 30 * time.Second},
		Vars:     map[string]string{"DATABASE_URL": "postgres://user:hunter2@db/shop"},
	}
}

// TestDeploymentObject pins what a slot's Deployment looks like: names,
// labels, image by digest, probe, grace period, strategy.
func TestDeploymentObject(t *testing.T) {
	d := &Driver{ProgressDeadline: 2 * time.Minute}
	spec := testSpec()
	vars, err := envVars(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := vars["GANTRY_INSTANCE"]; ok || vars["GANTRY_SLOT"] != "green" || vars["PORT"] != "8080" {
		t.Errorf("variables %v: want GANTRY_SLOT and PORT, no GANTRY_INSTANCE", slices.Sorted(maps.Keys(vars)))
	}
	if vars["HOST"] != gantry.ListenAll || vars["GANTRY_LISTEN"] != "0.0.0.0:8080" {
		t.Errorf("HOST=%q GANTRY_LISTEN=%q: want a pod told to listen on its own address, 0.0.0.0:8080", vars["HOST"], vars["GANTRY_LISTEN"])
	}
	dep := d.deploymentObject("shop-prod", deploymentName(spec.App, spec.Service, spec.Slot), spec, 3, true, vars)
	got, err := json.MarshalIndent(dep, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(got), "hunter2") {
		t.Fatal("a variable's value is in the Deployment")
	}
	golden(t, "deployment.golden.json", got)
	roundTrip(t, got, &appsv1.Deployment{})

	svc, err := json.MarshalIndent(serviceObject("shop-prod", serviceName("shop", "web"), RoleLive, spec, "green"), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "service.golden.json", svc)
	roundTrip(t, svc, &corev1.Service{})
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (run with -update after checking):\ngot:\n%s", name, got)
	}
}

func roundTrip(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Errorf("golden object does not decode strictly: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		edit func(*gantry.InstanceSpec)
		ok   bool
	}{
		{"by digest", func(*gantry.InstanceSpec) {}, true},
		{"by tag", func(s *gantry.InstanceSpec) {
			s.Artifact.Image = "registry.test/shop/web:3.1.0"
			s.Artifact.Digest = ""
		}, false},
		{"tag and digest", func(s *gantry.InstanceSpec) { s.Artifact.Image = "registry.test/shop/web:3.1.0@" + s.Artifact.Digest }, true},
		{"short digest", func(s *gantry.InstanceSpec) {
			s.Artifact.Image = "registry.test/shop/web@sha256:1111"
			s.Artifact.Digest = ""
		}, false},
		{"upper-case digest", func(s *gantry.InstanceSpec) {
			s.Artifact.Image = strings.ToUpper(s.Artifact.Image)
			s.Artifact.Digest = ""
		}, false},
		{"other digest than the release's", func(s *gantry.InstanceSpec) { s.Artifact.Digest = "sha256:" + strings.Repeat("2", 64) }, false},
		{"no image (a tarball release)", func(s *gantry.InstanceSpec) { s.Artifact = gantry.Artifact{Kind: "tarball", Digest: s.Artifact.Digest} }, false},
		{"bad slot", func(s *gantry.InstanceSpec) { s.Slot = "red" }, false},
		{"no service", func(s *gantry.InstanceSpec) { s.Service = "" }, false},
		{"port out of range", func(s *gantry.InstanceSpec) { s.Port = 70000 }, false},
		{"bad variable name", func(s *gantry.InstanceSpec) { s.Vars["A=B"] = "x" }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := testSpec()
			tt.edit(&spec)
			err := validate(spec)
			if tt.ok && err != nil {
				t.Errorf("validate: %v, want nil", err)
			}
			if !tt.ok && gantry.ErrorCode(err) != gantry.EINVALID {
				t.Errorf("validate: %v, want code %q", err, gantry.EINVALID)
			}
		})
	}
}

func TestNames(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"shop-web-blue", "shop-web-blue"},
		{"Shop_Web.blue", "shop-web-blue"},
		{"-x-", "x"},
		{strings.Repeat("a", 70), strings.Repeat("a", 54) + "-" + dnsName(strings.Repeat("a", 70))[55:]},
	} {
		got := dnsName(tt.in)
		if got != tt.want || len(got) > 63 {
			t.Errorf("dnsName(%q) = %q, want %q (≤ 63)", tt.in, got, tt.want)
		}
	}
	if a, b := dnsName(strings.Repeat("a", 70)+"x"), dnsName(strings.Repeat("a", 70)+"y"); a == b {
		t.Errorf("two long names collide: %q", a)
	}
	for _, tt := range []struct{ in, want string }{
		{"3.1.0", "3.1.0"},
		{"3.1.0+g1a2b3c", "3.1.0_g1a2b3c"},
		{strings.Repeat("r", 80), strings.Repeat("r", 63)},
	} {
		if got := labelValue(tt.in); got != tt.want {
			t.Errorf("labelValue(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestVarsHash(t *testing.T) {
	a := varsHash(map[string]string{"A": "1", "B": "2"})
	if b := varsHash(map[string]string{"B": "2", "A": "1"}); a != b {
		t.Errorf("hash depends on map order: %s != %s", a, b)
	}
	if b := varsHash(map[string]string{"A": "1", "B": "3"}); a == b {
		t.Error("a changed value leaves the hash alone: pods would not roll")
	}
	if b := varsHash(map[string]string{"A": "1B", "": "2"}); a == b {
		t.Error("hash is ambiguous about where keys and values end")
	}
}

func TestRolloutDone(t *testing.T) {
	three := int32(3)
	for _, tt := range []struct {
		name   string
		gen    int64
		status appsv1.DeploymentStatus
		done   bool
		fails  bool
	}{
		{"not observed", 2, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}, false, false},
		{"old replicas left", 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 4, UpdatedReplicas: 3, AvailableReplicas: 3}, false, false},
		{"not available", 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 2}, false, false},
		{"done", 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, AvailableReplicas: 3}, true, false},
		{"deadline", 1, appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 3, UpdatedReplicas: 3, Conditions: []appsv1.DeploymentCondition{
			{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded"},
		}}, false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dep := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &three}, Status: tt.status}
			dep.Generation = tt.gen
			done, err := rolloutDone(dep)
			if done != tt.done || (err != nil) != tt.fails {
				t.Errorf("rolloutDone: %v, %v; want %v, error %v", done, err, tt.done, tt.fails)
			}
		})
	}
}
