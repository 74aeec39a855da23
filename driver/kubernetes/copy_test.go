package kubernetes_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/kubernetes"
	"github.com/gantry-dev/gantry/internal/k8stest"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// copySeen records the copy's source pods and Jobs as the API server shows
// them, since CopyPersist deletes them when it returns.
type copySeen struct {
	mu   sync.Mutex
	pods map[string]*corev1.Pod
	jobs map[string]*batchv1.Job
}

func watchCopy(t *testing.T, c *k8stest.Cluster, srcNS, dstNS string) *copySeen {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s := &copySeen{pods: map[string]*corev1.Pod{}, jobs: map[string]*batchv1.Job{}}
	pw, err := c.Client.CoreV1().Pods(srcNS).Watch(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelCopy + "=source"})
	if err != nil {
		t.Fatal(err)
	}
	jw, err := c.Client.BatchV1().Jobs(dstNS).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for ev := range pw.ResultChan() {
			if p, ok := ev.Object.(*corev1.Pod); ok {
				s.mu.Lock()
				s.pods[p.Name] = p
				s.mu.Unlock()
			}
		}
	}()
	go func() {
		for ev := range jw.ResultChan() {
			if j, ok := ev.Object.(*batchv1.Job); ok {
				s.mu.Lock()
				s.jobs[j.Name] = j
				s.mu.Unlock()
			}
		}
	}()
	return s
}

// one returns the one pod and Job seen, once the Job was seen in a state
// done says is final.
func (s *copySeen) one(t *testing.T, done func(*batchv1.Job) bool) (*corev1.Pod, *batchv1.Job) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		var pod *corev1.Pod
		var job *batchv1.Job
		n := 0
		for _, p := range s.pods {
			if !strings.HasPrefix(p.Name, "stale-") {
				pod = p
				n++
			}
		}
		for _, j := range s.jobs {
			job = j
		}
		m := len(s.jobs)
		s.mu.Unlock()
		if n > 1 || m > 1 {
			t.Fatalf("%d source pods and %d Jobs, want one of each", n, m)
		}
		if pod != nil && job != nil && done(job) {
			return pod, job
		}
		if time.Now().After(deadline) {
			t.Fatalf("source pod %v, Job %v: not seen in their final state", pod != nil, job != nil)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func jobCondition(j *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i, c := range j.Status.Conditions {
		if c.Type == typ && c.Status == corev1.ConditionTrue {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// sourceClaim creates the source environment's claim of uploads, as its
// first deploy would, with a volume for it.
func sourceClaim(t *testing.T, c *k8stest.Cluster, ns string) {
	t.Helper()
	providePV(t, c, ns, "model-persist-uploads", "", "1Gi")
	claim := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "model-persist-uploads", Labels: map[string]string{
			kubernetes.LabelManagedBy: "gantry", kubernetes.LabelApp: "model", kubernetes.LabelEnv: "test", kubernetes.LabelPersist: "uploads",
		}},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		},
	}
	if _, err := c.Client.CoreV1().PersistentVolumeClaims(ns).Create(context.Background(), claim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// copyCase is a copy from environment test of app model (its claim of
// uploads) into testnew, in namespaces of their own, with a volume for
// each of testnew's claims of names, copy image image.
type copyCase struct {
	d        *kubernetes.Driver
	from, to gantry.SlotRef
	seen     *copySeen
}

func newCopyCase(t *testing.T, c *k8stest.Cluster, prefix, image string, names ...string) copyCase {
	t.Helper()
	srcNS, dstNS := c.Namespace(t, prefix+"-src"), c.Namespace(t, prefix+"-dst")
	sourceClaim(t, c, srcNS)
	for _, name := range names {
		providePV(t, c, dstNS, "model-persist-"+name, "", "1Gi")
	}
	x := copyCase{d: newDriver(t, c, srcNS), seen: watchCopy(t, c, srcNS, dstNS),
		from: gantry.SlotRef{App: "model", Env: "test", Runtime: gantry.RuntimeSpec{Driver: "kubernetes", Namespace: srcNS}},
		to:   gantry.SlotRef{App: "model", Env: "testnew", Runtime: gantry.RuntimeSpec{Driver: "kubernetes", Namespace: dstNS, CopyImage: image}},
	}
	x.d.ProgressDeadline = 30 * time.Second
	return x
}

// TestCopyPersist: the copy of a clone's persistent directories creates
// the clone's claims in its namespace, serves the source's claim (read
// only) from a pod in the source's namespace and fetches it with a Job in
// the clone's, which mounts the clone's claim; CopyPersist returns once
// the Job completed, and deletes both. A directory the source has no claim
// of is not copied, and its claim is created all the same. What an earlier
// copy into the same environment left is removed first.
func TestCopyPersist(t *testing.T) {
	c := k8stest.Need(t, cluster)
	x := newCopyCase(t, c, "shop-copy", imageV2, "uploads", "reports")
	srcNS, dstNS, seen, ctx := x.from.Runtime.Namespace, x.to.Runtime.Namespace, x.seen, ctxFor(t)
	d, from, to := x.d, x.from, x.to

	// What a copy into testnew that the server left behind (and one into
	// another environment, which runs on).
	for _, into := range []string{"testnew", "other"} {
		stale := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "stale-" + into, Labels: map[string]string{
				kubernetes.LabelManagedBy: "gantry", kubernetes.LabelApp: "model", kubernetes.LabelCopy: "source", kubernetes.LabelCopyInto: into,
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "copy", Image: imageV1}}},
		}
		if _, err := c.Client.CoreV1().Pods(srcNS).Create(ctx, stale, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	msg, err := d.CopyPersist(ctx, from, to, []string{"uploads", "reports"})
	returned := time.Now()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(msg, "uploads copied from "+srcNS+"/test by Job "+dstNS+"/model-persist-copy-") {
		t.Errorf("CopyPersist = %q, want uploads (alone) copied by the Job", msg)
	}
	for _, name := range []string{"model-persist-uploads", "model-persist-reports"} {
		claim, err := c.Client.CoreV1().PersistentVolumeClaims(dstNS).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("the clone's claim %s: %v", name, err)
			continue
		}
		if claim.Labels[kubernetes.LabelEnv] != "testnew" || claim.Spec.AccessModes[0] != corev1.ReadWriteMany {
			t.Errorf("the clone's claim %s: labels %v, modes %v", name, claim.Labels, claim.Spec.AccessModes)
		}
	}

	pod, job := seen.one(t, func(j *batchv1.Job) bool { return jobCondition(j, batchv1.JobComplete) != nil })
	if done := jobCondition(job, batchv1.JobComplete); done.LastTransitionTime.After(returned) {
		t.Errorf("the Job completed at %s, after CopyPersist returned at %s", done.LastTransitionTime, returned)
	}
	// The source side.
	ps := pod.Spec
	if pod.Namespace != srcNS || len(ps.Volumes) != 1 || ps.Volumes[0].PersistentVolumeClaim == nil ||
		ps.Volumes[0].PersistentVolumeClaim.ClaimName != "model-persist-uploads" || !ps.Volumes[0].PersistentVolumeClaim.ReadOnly {
		t.Errorf("source pod %s/%s volumes %+v: want the source's claim of uploads, read only", pod.Namespace, pod.Name, ps.Volumes)
	}
	sc := ps.Containers[0]
	if sc.Image != imageV2 || len(sc.VolumeMounts) != 1 || sc.VolumeMounts[0].MountPath != "/from/uploads" || !sc.VolumeMounts[0].ReadOnly ||
		!strings.Contains(strings.Join(sc.Command, " "), "httpd -f -p $GANTRY_COPY_PORT") || sc.ReadinessProbe == nil {
		t.Errorf("source container image %s, mounts %+v, command %q: want the copy image serving /from/uploads", sc.Image, sc.VolumeMounts, sc.Command)
	}
	// The clone's side.
	js := job.Spec.Template.Spec
	if job.Namespace != dstNS || job.Spec.BackoffLimit == nil || *job.Spec.BackoffLimit != 0 || js.RestartPolicy != corev1.RestartPolicyNever {
		t.Errorf("Job %s/%s backoff %v, restart %s: want in the clone's namespace, never retried", job.Namespace, job.Name, job.Spec.BackoffLimit, js.RestartPolicy)
	}
	if d := job.Spec.ActiveDeadlineSeconds; d == nil || *d != int64(kubernetes.CopyDeadline.Seconds()) {
		t.Errorf("Job's active deadline %v, want %s", d, kubernetes.CopyDeadline)
	}
	if len(js.Volumes) != 1 || js.Volumes[0].PersistentVolumeClaim == nil || js.Volumes[0].PersistentVolumeClaim.ClaimName != "model-persist-uploads" ||
		js.Volumes[0].PersistentVolumeClaim.ReadOnly {
		t.Errorf("Job volumes %+v: want the clone's claim of uploads, writable", js.Volumes)
	}
	jc := js.Containers[0]
	env := map[string]string{}
	for _, e := range jc.Env {
		env[e.Name] = e.Value
	}
	wantURL := "http://" + pod.Status.PodIP + ":7070/cgi-bin/"
	if pod.Status.PodIP == "" || env["GANTRY_COPY_URL"] != wantURL {
		t.Errorf("Job fetches %q, want the source pod's %q and its key", env["GANTRY_COPY_URL"], wantURL)
	}
	// The key (the path the files are served at) comes to each side from a
	// Secret of its namespace, never in a spec a viewer reads, and goes
	// with the copy.
	for _, side := range []struct {
		what string
		env  []corev1.EnvVar
	}{{"source pod", sc.Env}, {"Job", jc.Env}} {
		var ref *corev1.SecretKeySelector
		for _, e := range side.env {
			if e.Name == "GANTRY_COPY_KEY" && e.Value == "" && e.ValueFrom != nil {
				ref = e.ValueFrom.SecretKeyRef
			}
		}
		if ref == nil || ref.Name == "" || ref.Key != "key" {
			t.Errorf("%s: GANTRY_COPY_KEY %+v, want it from a Secret", side.what, side.env)
		}
	}
	for _, ns := range []string{srcNS, dstNS} {
		keys, err := c.Client.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelCopy})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range keys.Items {
			if k.DeletionTimestamp == nil {
				t.Errorf("the copy's key %s/%s is left after the copy", ns, k.Name)
			}
		}
	}
	if jc.Image != imageV2 || len(jc.VolumeMounts) != 1 || jc.VolumeMounts[0].MountPath != "/to/uploads" ||
		!strings.Contains(strings.Join(jc.Command, " "), "set -o pipefail; wget") || !strings.Contains(strings.Join(jc.Command, " "), "tar -xzf - -C /to") {
		t.Errorf("Job container image %s, mounts %+v, command %q: want the copy image unpacking into /to/uploads", jc.Image, jc.VolumeMounts, jc.Command)
	}
	checkCopyGone(t, c, srcNS, pod.Name, dstNS, job.Name)
	if p, err := c.Client.CoreV1().Pods(srcNS).Get(ctx, "stale-testnew", metav1.GetOptions{}); err == nil && p.DeletionTimestamp == nil {
		t.Error("the source pod an earlier copy into testnew left is still there")
	}
	if p, err := c.Client.CoreV1().Pods(srcNS).Get(ctx, "stale-other", metav1.GetOptions{}); err != nil || p.DeletionTimestamp != nil {
		t.Errorf("the source pod of a copy into another environment: %v, want it left alone", err)
	}
}

// checkCopyGone: once CopyPersist returned, its source pod and Job are
// gone or going.
func checkCopyGone(t *testing.T, c *k8stest.Cluster, srcNS, pod, dstNS, job string) {
	t.Helper()
	ctx := context.Background()
	if p, err := c.Client.CoreV1().Pods(srcNS).Get(ctx, pod, metav1.GetOptions{}); err == nil && p.DeletionTimestamp == nil {
		t.Errorf("source pod %s/%s is left after the copy", srcNS, pod)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
	if j, err := c.Client.BatchV1().Jobs(dstNS).Get(ctx, job, metav1.GetOptions{}); err == nil && j.DeletionTimestamp == nil {
		t.Errorf("Job %s/%s is left after the copy", dstNS, job)
	} else if err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
}

// TestCopyPersistFails: a copy Job that fails fails CopyPersist, naming
// the Job, its pod's state and warning event; a source pod that does not
// become ready within the progress deadline fails it naming the pod. Both
// leave nothing behind.
func TestCopyPersistFails(t *testing.T) {
	c := k8stest.Need(t, cluster)
	x := newCopyCase(t, c, "shop-copyfail", k8stest.CopyFailImage, "uploads")
	srcNS, dstNS, seen, ctx := x.from.Runtime.Namespace, x.to.Runtime.Namespace, x.seen, ctxFor(t)
	d, from, to := x.d, x.from, x.to

	_, err := d.CopyPersist(ctx, from, to, []string{"uploads"})
	if gantry.ErrorCode(err) != gantry.EFAILED {
		t.Fatalf("CopyPersist with a failing Job = %v, want EFAILED", err)
	}
	t.Logf("CopyPersist with a failing Job: %v", err)
	pod, job := seen.one(t, func(j *batchv1.Job) bool { return jobCondition(j, batchv1.JobFailed) != nil })
	for _, want := range []string{"the copy Job " + dstNS + "/" + job.Name + ": failed", "exited 1: Error", "event CopyFailed: tar: invalid tar magic"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	checkCopyGone(t, c, srcNS, pod.Name, dstNS, job.Name)

	d.ProgressDeadline = 3 * time.Second
	to.Runtime.CopyImage = k8stest.NeverReadyImage
	_, err = d.CopyPersist(ctx, from, to, []string{"uploads"})
	t.Logf("CopyPersist with a source pod never ready: %v", err)
	if gantry.ErrorCode(err) != gantry.EFAILED || !strings.Contains(err.Error(), "the copy's source pod "+srcNS+"/model-persist-source-") ||
		!strings.Contains(err.Error(), "not started within the progress deadline (3s)") || !strings.Contains(err.Error(), "not ready") {
		t.Errorf("CopyPersist with a source pod never ready = %v, want EFAILED naming the pod at the deadline", err)
	}
	if list, err := c.Client.CoreV1().Pods(srcNS).List(ctx, metav1.ListOptions{LabelSelector: kubernetes.LabelCopy}); err != nil {
		t.Fatal(err)
	} else {
		for _, p := range list.Items {
			if p.DeletionTimestamp == nil {
				t.Errorf("source pod %s is left after the failed copy", p.Name)
			}
		}
	}
}
