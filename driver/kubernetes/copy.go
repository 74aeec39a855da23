package kubernetes

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-dev/gantry"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/cache"
	watchtools "k8s.io/client-go/tools/watch"
)

// A clone with --with-data copies the source environment's persistent
// directories into the clone's claims (CopyPersist). The two claims are in
// two namespaces, and a pod mounts claims of its own namespace only, so
// the copy has a side in each:
//
//   - the source pod, in the source's namespace, mounts the source's
//     claims read-only under /from/<name> and serves them, as one gzipped
//     tar stream, over HTTP on port CopyPort (busybox httpd and a CGI
//     script that runs tar), until the copy ends. It serves them at a
//     path no one can guess (/cgi-bin/<key>, a random key of 256 bits):
//     the pod's address is reachable from the whole cluster, and the
//     files are the environment's. The key reaches each side through a
//     Secret of its namespace (not the pod's spec, which a viewer reads);
//   - the copy Job, in the clone's namespace, mounts the clone's claims
//     under /to/<name>, fetches the stream from the source pod's address
//     and unpacks it (wget | tar -xz, with pipefail): a stream cut short
//     fails gzip's length and checksum test, hence the Job.
//
// Both run RuntimeSpec.CopyImage (default DefaultCopyImage), which needs
// sh, tar, gzip, wget and httpd. The source pod must be Ready, and the
// Job's pod running, within the progress deadline; a running copy has no
// bound but the Job's active deadline (CopyDeadline), at which Kubernetes
// stops it and the copy fails. (Not wget -T, a read timeout: busybox
// 1.35's wget crashes with it, TestCopyScripts saw.) Both are
// deleted once the copy ends, whatever its outcome.

// DefaultCopyImage is the image of the copy's pods when neither the
// environment (runtime.copy_image) nor the driver's PersistCopyImage says.
const DefaultCopyImage = "busybox:1.36"

// CopyPort is where the source pod serves the files.
const CopyPort = 7070

// CopyDeadline bounds a copy Job's run (activeDeadlineSeconds): a copy
// whose stream stalls fails then rather than hold the clone for ever.
const CopyDeadline = 6 * time.Hour

// LabelCopy marks the pods and Jobs of a copy: "source" or "job";
// LabelCopyInto names, on a source pod, the environment it serves.
const (
	LabelCopy     = "gantry.dev/persist-copy"
	LabelCopyInto = "gantry.dev/persist-copy-into"
)

const (
	copyFrom = "/from"
	copyTo   = "/to"
	// copyCGI is the source pod's CGI script: the files as a gzipped tar;
	// a failing tar appends text that makes the stream no tar, so the
	// Job's tar fails rather than unpack part of the files quietly.
	copyCGI = "#!/bin/sh\necho 'Content-Type: application/octet-stream'\necho\n" +
		"{ tar -C " + copyFrom + " -cf - . || echo 'gantry: reading the source files failed'; } | gzip -1\n"
	copyServe = "mkdir -p /tmp/gantry/cgi-bin && printf '%s\\n' \"$GANTRY_CGI\" > \"/tmp/gantry/cgi-bin/$GANTRY_COPY_KEY\" && " +
		"chmod 755 \"/tmp/gantry/cgi-bin/$GANTRY_COPY_KEY\" && exec httpd -f -p $GANTRY_COPY_PORT -h /tmp/gantry"
	copyFetch = "set -o pipefail; wget -q -O - \"$GANTRY_COPY_URL$GANTRY_COPY_KEY\" | tar -xzf - -C " + copyTo
)

// CopyPersist copies the persistent directories names of from's
// environment into to's: it creates to's claims (as a deploy would) and
// copies into them what from's claims hold. A directory whose claim from
// does not have yet holds nothing and is not copied. It says, for the
// journal, what it copied.
func (d *Driver) CopyPersist(ctx context.Context, from, to gantry.SlotRef, names []string) (string, error) {
	fromNS, toNS := d.namespace(from.Runtime, from.App, from.Env), d.namespace(to.Runtime, to.App, to.Env)
	if fromNS == toNS {
		return "", gantry.Errorf(gantry.EINVALID, "kubernetes: copy persistent directories: %s and %s share the namespace %s, hence the claims", from.Env, to.Env, fromNS)
	}
	var have []string
	for _, name := range slices.Sorted(slices.Values(names)) {
		c, err := d.Client.claims(fromNS).Get(ctx, claimName(from.App, name))
		switch {
		case apierrors.IsNotFound(err):
			continue
		case err != nil:
			return "", apiError(err, "read claim %s/%s", fromNS, claimName(from.App, name))
		}
		if err := owned(&c.ObjectMeta); err != nil {
			return "", err
		}
		have = append(have, name)
	}
	if err := d.ensureNamespace(ctx, toNS); err != nil {
		return "", err
	}
	spec := gantry.InstanceSpec{App: to.App, Env: to.Env, Runtime: to.Runtime, Persist: map[string]string{}}
	for _, name := range names {
		spec.Persist[name] = ""
	}
	if err := d.ensureClaims(ctx, toNS, spec); err != nil {
		return "", err
	}
	if len(have) == 0 {
		return "nothing written yet: " + from.Env + " has no claim of " + strings.Join(names, ", "), nil
	}
	image := cmp.Or(to.Runtime.CopyImage, d.PersistCopyImage, DefaultCopyImage)
	wctx := context.WithoutCancel(ctx)
	if err := d.removeStaleCopy(ctx, fromNS, toNS, from.App, to.Env); err != nil {
		return "", err
	}
	key, err := copyKey()
	if err != nil {
		return "", err
	}
	srcLabels := withLabel(copyLabels(from.App, from.Env, "source"), LabelCopyInto, labelValue(to.Env))
	srcKey, err := d.copyKeySecret(ctx, fromNS, from.App+"-persist-source", srcLabels, key)
	if err != nil {
		return "", err
	}
	defer d.deleteCopyObject(wctx, "secret", fromNS, srcKey, d.Client.secrets(fromNS).Delete)
	src, err := d.Client.pods(fromNS).Create(ctx, d.copySourcePod(fromNS, from, srcLabels, srcKey, have, image))
	if err != nil {
		return "", apiError(err, "create the copy's source pod in %s", fromNS)
	}
	defer d.deleteCopyObject(wctx, "pod", fromNS, src.Name, d.Client.pods(fromNS).Delete)
	addr, err := d.waitCopySource(ctx, src)
	if err != nil {
		return "", err
	}
	jobKey, err := d.copyKeySecret(ctx, toNS, to.App+"-persist-copy", copyLabels(to.App, to.Env, "job"), key)
	if err != nil {
		return "", err
	}
	defer d.deleteCopyObject(wctx, "secret", toNS, jobKey, d.Client.secrets(toNS).Delete)
	job, err := d.Client.jobs(toNS).Create(ctx, d.copyJob(toNS, to, from.Env, have, image, "http://"+addr+"/cgi-bin/", jobKey))
	if err != nil {
		return "", apiError(err, "create the copy Job in %s", toNS)
	}
	defer d.deleteCopyObject(wctx, "job", toNS, job.Name, d.Client.jobs(toNS).Delete)
	if err := d.waitCopyJob(ctx, job); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s copied from %s/%s by Job %s/%s", strings.Join(have, ", "), fromNS, from.Env, toNS, job.Name), nil
}

// removeStaleCopy deletes what an earlier copy into env left (the server
// stopped in the middle of it): its source pod, which would serve on, and
// its Job, and the Secrets that hold their key.
func (d *Driver) removeStaleCopy(ctx context.Context, fromNS, toNS, app, env string) error {
	sel := func(side string, more ...string) string {
		return strings.Join(append([]string{LabelManagedBy + "=" + managedBy, LabelApp + "=" + labelValue(app), LabelCopy + "=" + side}, more...), ",")
	}
	pods, err := d.Client.pods(fromNS).List(ctx, metav1.ListOptions{LabelSelector: sel("source", LabelCopyInto+"="+labelValue(env))})
	if err != nil {
		return apiError(err, "list copy pods in %s", fromNS)
	}
	for _, p := range pods.Items {
		d.deleteCopyObject(ctx, "pod", fromNS, p.Name, d.Client.pods(fromNS).Delete)
	}
	jobs, err := d.Client.jobs(toNS).List(ctx, metav1.ListOptions{LabelSelector: sel("job")})
	if err != nil {
		return apiError(err, "list copy Jobs in %s", toNS)
	}
	for _, j := range jobs.Items {
		d.deleteCopyObject(ctx, "job", toNS, j.Name, d.Client.jobs(toNS).Delete)
	}
	for _, side := range []struct{ ns, sel string }{{fromNS, sel("source", LabelCopyInto+"="+labelValue(env))}, {toNS, sel("job")}} {
		keys, err := d.Client.secrets(side.ns).List(ctx, metav1.ListOptions{LabelSelector: side.sel})
		if err != nil {
			return apiError(err, "list copy keys in %s", side.ns)
		}
		for _, k := range keys.Items {
			d.deleteCopyObject(ctx, "secret", side.ns, k.Name, d.Client.secrets(side.ns).Delete)
		}
	}
	return nil
}

// copyKey is a copy's key: the path where the source pod serves the files.
func copyKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("kubernetes: the copy's key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// copyKeySecret stores key in a new Secret of ns and returns its name.
func (d *Driver) copyKeySecret(ctx context.Context, ns, prefix string, labels map[string]string, key string) (string, error) {
	sec, err := d.Client.secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{GenerateName: dnsName(prefix+"-key") + "-", Namespace: ns, Labels: labels},
		Data:       map[string][]byte{"key": []byte(key)},
	})
	if err != nil {
		return "", apiError(err, "create the copy's key in %s", ns)
	}
	return sec.Name, nil
}

// keyFrom is the environment variable GANTRY_COPY_KEY, read from secret.
func keyFrom(secret string) corev1.EnvVar {
	return corev1.EnvVar{Name: "GANTRY_COPY_KEY", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: "key",
	}}}
}

func withLabel(m map[string]string, k, v string) map[string]string {
	m[k] = v
	return m
}

// copyLabels are the labels of a copy's pod or Job in env.
func copyLabels(app, env, side string) map[string]string {
	return map[string]string{LabelManagedBy: managedBy, LabelApp: labelValue(app), LabelEnv: labelValue(env), LabelCopy: side}
}

// copyPodSpec is the pod of one side of a copy: the claims of names
// mounted under dir, one container running script.
func (d *Driver) copyPodSpec(app string, names []string, dir string, readOnly bool, image, script string, env []corev1.EnvVar) corev1.PodSpec {
	pod := corev1.PodSpec{
		RestartPolicy: corev1.RestartPolicyNever,
		// The copy needs no access to the API server.
		AutomountServiceAccountToken: new(bool),
		Containers: []corev1.Container{{
			Name: "copy", Image: image, Command: []string{"sh", "-c", script}, Env: env,
		}},
	}
	if d.ImagePullSecret != "" {
		pod.ImagePullSecrets = []corev1.LocalObjectReference{{Name: d.ImagePullSecret}}
	}
	for _, name := range names {
		pod.Volumes = append(pod.Volumes, corev1.Volume{
			Name: volumeName(name),
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
				ClaimName: claimName(app, name), ReadOnly: readOnly,
			}},
		})
		c := &pod.Containers[0]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: volumeName(name), MountPath: path.Join(dir, name), ReadOnly: readOnly})
	}
	return pod
}

// copySourcePod serves from's claims of names at the key in keySecret.
func (d *Driver) copySourcePod(ns string, from gantry.SlotRef, labels map[string]string, keySecret string, names []string, image string) *corev1.Pod {
	spec := d.copyPodSpec(from.App, names, copyFrom, true, image, copyServe, []corev1.EnvVar{
		{Name: "GANTRY_CGI", Value: copyCGI},
		{Name: "GANTRY_COPY_PORT", Value: strconv.Itoa(CopyPort)},
		keyFrom(keySecret),
	})
	c := &spec.Containers[0]
	c.Ports = []corev1.ContainerPort{{Name: "files", ContainerPort: CopyPort}}
	c.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(CopyPort)}},
		PeriodSeconds: 1,
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: dnsName(from.App+"-persist-source") + "-", Namespace: ns, Labels: labels,
		},
		Spec: spec,
	}
}

// copyJob fetches url followed by the key in keySecret into to's claims
// of names.
func (d *Driver) copyJob(ns string, to gantry.SlotRef, from string, names []string, image, url, keySecret string) *batchv1.Job {
	spec := d.copyPodSpec(to.App, names, copyTo, false, image, copyFetch, []corev1.EnvVar{
		{Name: "GANTRY_COPY_URL", Value: url},
		keyFrom(keySecret),
	})
	labels := copyLabels(to.App, to.Env, "job")
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: dnsName(to.App+"-persist-copy") + "-", Namespace: ns, Labels: labels,
			Annotations: map[string]string{"gantry.dev/copy-from": from},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:          new(int32), // a failed copy fails the clone, which can run again
			ActiveDeadlineSeconds: new(int64(CopyDeadline.Seconds())),
			Template:              corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec},
		},
	}
}

// waitCopySource waits for the source pod to be ready, and returns the
// address it serves on.
func (d *Driver) waitCopySource(ctx context.Context, pod *corev1.Pod) (string, error) {
	var cur *corev1.Pod
	err := d.waitObject(ctx, d.Client.pods(pod.Namespace).listWatch("", nameIs(pod.Name)), &corev1.Pod{}, func(obj any) (bool, error) {
		cur = obj.(*corev1.Pod)
		switch cur.Status.Phase {
		case corev1.PodFailed, corev1.PodSucceeded:
			return false, errors.New("it ended")
		}
		if reason := stuck(cur); reason != "" {
			return false, errors.New(reason)
		}
		return podReady(cur) && cur.Status.PodIP != "", nil
	})
	if err != nil {
		return "", d.copyFailed(ctx, "the copy's source pod "+pod.Namespace+"/"+pod.Name, err, cmp.Or(cur, pod))
	}
	return net.JoinHostPort(cur.Status.PodIP, strconv.Itoa(CopyPort)), nil
}

// waitCopyJob waits for the copy Job: its pod must run within the
// progress deadline, then the Job must complete.
func (d *Driver) waitCopyJob(ctx context.Context, job *batchv1.Job) error {
	lw := d.Client.jobs(job.Namespace).listWatch("", nameIs(job.Name))
	failed := func(j *batchv1.Job) error {
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return fmt.Errorf("failed: %s", cmp.Or(c.Message, c.Reason))
			}
		}
		return nil
	}
	complete := func(j *batchv1.Job) bool {
		for _, c := range j.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}
	cur := job
	started := func(obj any) (bool, error) {
		cur = obj.(*batchv1.Job)
		if err := failed(cur); err != nil {
			return false, err
		}
		return complete(cur) || (cur.Status.Ready != nil && *cur.Status.Ready > 0) || cur.Status.Succeeded > 0, nil
	}
	err := d.waitObject(ctx, lw, &batchv1.Job{}, started)
	if err == nil && !complete(cur) {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		_, err = watchtools.UntilWithSync(wctx, lw, &batchv1.Job{}, nil, func(ev watch.Event) (bool, error) {
			if ev.Type == watch.Deleted {
				return false, errors.New("it was deleted")
			}
			cur = ev.Object.(*batchv1.Job)
			if err := failed(cur); err != nil {
				return false, err
			}
			return complete(cur), nil
		})
	}
	if err != nil {
		return d.copyFailed(ctx, "the copy Job "+job.Namespace+"/"+job.Name, err, d.jobPods(ctx, job)...)
	}
	return nil
}

// waitObject watches one object until done says so, within the progress
// deadline.
func (d *Driver) waitObject(ctx context.Context, lw cache.ListerWatcher, obj runtime.Object, done func(any) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, d.progressDeadline())
	defer cancel()
	_, err := watchtools.UntilWithSync(ctx, lw, obj, nil, func(ev watch.Event) (bool, error) {
		if ev.Type == watch.Deleted {
			return false, errors.New("it was deleted")
		}
		return done(ev.Object)
	})
	return err
}

// jobPods are the pods of a copy Job, for its failure message.
func (d *Driver) jobPods(ctx context.Context, job *batchv1.Job) []*corev1.Pod {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), describeTimeout)
	defer cancel()
	list, err := d.Client.pods(job.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "batch.kubernetes.io/job-name=" + job.Name})
	if err != nil {
		return nil
	}
	var out []*corev1.Pod
	for i := range list.Items {
		out = append(out, &list.Items[i])
	}
	return out
}

// copyFailed is the error of a copy whose what failed (or did not start in
// time), with its pods' states and warning events.
func (d *Driver) copyFailed(ctx context.Context, what string, err error, pods ...*corev1.Pod) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), describeTimeout)
	defer cancel()
	var detail []string
	for _, pod := range pods {
		if fresh, gerr := d.Client.pods(pod.Namespace).Get(dctx, pod.Name); gerr == nil {
			pod = fresh
		}
		detail = append(detail, d.describePod(dctx, pod))
	}
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) || wait.Interrupted(err) {
		msg = fmt.Sprintf("not started within the progress deadline (%s)", d.progressDeadline())
	}
	if len(detail) > 0 {
		msg += "; " + strings.Join(detail, "; ")
	}
	return gantry.Errorf(gantry.EFAILED, "copy persistent directories: %s: %s", what, msg)
}

// deleteCopyObject deletes a copy's pod or Job (and the Job's pods).
func (d *Driver) deleteCopyObject(ctx context.Context, kind, ns, name string, del func(context.Context, string, metav1.DeleteOptions) error) {
	ctx, cancel := context.WithTimeout(ctx, describeTimeout)
	defer cancel()
	bg := metav1.DeletePropagationBackground
	if err := del(ctx, name, metav1.DeleteOptions{PropagationPolicy: &bg}); err != nil && !apierrors.IsNotFound(err) {
		d.logger().Warn("kubernetes: the copy's "+kind+" is left behind", "namespace", ns, "name", name, "err", err)
	}
}

func nameIs(name string) string { return fields.OneTermEqualSelector("metadata.name", name).String() }
