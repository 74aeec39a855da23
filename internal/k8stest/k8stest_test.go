package k8stest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPKI(t *testing.T) {
	dir := t.TempDir()
	p, err := writePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(p.Cert, p.Key)
	if err != nil {
		t.Fatalf("serving certificate and key do not match: %v", err)
	}
	cert, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(p.CAPEM) {
		t.Fatal("CA PEM does not parse")
	}
	for _, host := range []string{"127.0.0.1", "localhost", "kubernetes.default.svc"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("serving certificate for %s: %v", host, err)
		}
	}
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: "example.com"}); err == nil {
		t.Error("serving certificate verifies for example.com")
	}
	for _, f := range []string{p.SAKey, p.SAPub, p.CAKey} {
		if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, st.Mode().Perm())
		}
	}
}

// TestWriteStages: kwok's own pod-ready stage is replaced by Gantry's, whose
// exceptions make the failure images fail; the node stages stay.
func TestWriteStages(t *testing.T) {
	bin := t.TempDir()
	base := "---\nkind: Stage\nmetadata:\n  name: node-initialize\n---\nkind: Stage\nmetadata:\n  name: pod-ready\n---\nkind: Stage\nmetadata:\n  name: pod-delete\n"
	if err := os.WriteFile(filepath.Join(bin, "kwok-stages.yaml"), []byte(base), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: t.TempDir()}
	path, err := c.writeStages(bin)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	for _, want := range []string{"name: node-initialize", "name: pod-delete", "name: gantry-pod-ready", "name: gantry-pod-never-ready", "name: gantry-pod-image-pull-failed", "name: gantry-pod-crash-loop", "name: gantry-pod-serve-started", "name: gantry-pod-serve-ready"} {
		if !strings.Contains(got, want) {
			t.Errorf("stages lack %q", want)
		}
	}
	if strings.Contains(got, "name: pod-ready\n") {
		t.Error("kwok's pod-ready stage is still there: failing images would become ready")
	}
	for _, img := range append([]string{NeverReadyImage, PullFailImage, CrashLoopImage}, ServeImages[:]...) {
		// Listed in gantry-pod-ready's NotIn, and in its own stages' In.
		if n := strings.Count(got, img); n < 2 {
			t.Errorf("image %s appears %d times in the stages, want ≥ 2", img, n)
		}
	}
}

// TestNeedSkips: without a cluster, tests skip rather than fail.
func TestNeedSkips(t *testing.T) {
	var skipped bool
	t.Run("inner", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		Need(t, nil)
		t.Error("Need(nil) returned")
	})
	if !skipped {
		t.Error("Need(nil) did not skip")
	}
}

// TestBinariesNotBuilt: with an empty cache a test binary neither builds
// the cluster nor waits: it says at once that the cluster is not built and
// which command builds it.
func TestBinariesNotBuilt(t *testing.T) {
	t.Setenv("GANTRY_K8S_BIN", "")
	t.Setenv("GANTRY_K8S_CACHE", t.TempDir())
	begin := time.Now()
	_, err := Binaries(context.Background())
	if !errors.Is(err, ErrNotBuilt) || !strings.Contains(err.Error(), "k8s-cluster.sh build") {
		t.Fatalf("Binaries with an empty cache: %v; want ErrNotBuilt naming k8s-cluster.sh build", err)
	}
	if d := time.Since(begin); d > 10*time.Second {
		t.Errorf("Binaries took %s with an empty cache; want an answer at once", d)
	}
}

// TestHoldersNamesTheListener: a pod that cannot listen because its
// address is taken is reported with what listens on its port.
func TestHoldersNamesTheListener(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("no ss(8)")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = net.Listen("tcp", ln.Addr().String())
	got := holders(err, "127.0.0.1", port)
	if want := fmt.Sprintf("127.0.0.1:%d", port); !strings.Contains(got, "is taken") || strings.Count(got, want) < 2 {
		t.Errorf("holders(%v) = %q, want it to name %s and its listener", err, got, want)
	}
	if got := holders(errors.New("other"), "127.0.0.1", port); got != "" {
		t.Errorf("holders of another error = %q, want nothing", got)
	}
}
