package kubernetes

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCopyScripts runs the copy's two scripts (the source pod's httpd and
// CGI script, the Job's wget | tar) with a real busybox, as the copy image
// runs them, on directories of the test's in place of the claims' mount
// points (the kwok cluster runs no container): the files arrive, contents,
// modes and symbolic link included; a source that is not there, and a
// stream cut short, make the fetch fail rather than succeed with nothing
// or with part of the files.
func TestCopyScripts(t *testing.T) {
	bb, err := exec.LookPath("busybox")
	if err != nil {
		if os.Getenv("GANTRY_INTEGRATION") == "1" {
			t.Fatal("busybox is not installed (Debian: busybox)")
		}
		t.Skip("busybox is not installed (Debian: busybox)")
	}
	bin := t.TempDir()
	for _, applet := range []string{"sh", "httpd", "tar", "gzip", "wget", "mkdir", "printf", "chmod", "echo"} {
		if err := os.Symlink(bb, filepath.Join(bin, applet)); err != nil {
			t.Fatal(err)
		}
	}
	from, to, www := t.TempDir(), t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(from, "uploads", "2026"), 0o755); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("gantry persistent data\n", 50000)
	files := map[string]string{"uploads/a.txt": "first upload\n", "uploads/2026/big.log": big}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(from, name), []byte(body), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(from, "uploads", "latest")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(to, "uploads"), 0o755); err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := func(kv ...string) []string { return append([]string{"PATH=" + bin}, kv...) }
	serve := exec.CommandContext(ctx, filepath.Join(bin, "sh"), "-c", strings.ReplaceAll(copyServe, "/tmp/gantry", www))
	cgi := strings.Replace(copyCGI, "#!/bin/sh", "#!"+filepath.Join(bin, "sh"), 1)
	cgi = strings.ReplaceAll(cgi, "-C "+copyFrom+" ", "-C "+from+" ")
	const key = "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0"
	serve.Env = env("GANTRY_CGI="+cgi, "GANTRY_COPY_PORT="+addr, "GANTRY_COPY_KEY="+key)
	serve.Stdout, serve.Stderr = os.Stderr, os.Stderr
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = serve.Process.Kill(); _ = serve.Wait() }()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i == 100 {
			t.Fatalf("busybox httpd does not listen on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	fetch := func(url, key string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, filepath.Join(bin, "sh"), "-c", strings.ReplaceAll(copyFetch, " -C "+copyTo, " -C "+to))
		cmd.Env = env("GANTRY_COPY_URL="+url, "GANTRY_COPY_KEY="+key)
		return cmd.CombinedOutput()
	}
	// Without the key, nothing is served: not the script's directory, not
	// another name.
	for _, guess := range []string{"", "files", key[:63], "x" + key} {
		if out, err := fetch("http://"+addr+"/cgi-bin/", guess); err == nil {
			t.Errorf("the source served /cgi-bin/%s, not its key:\n%s", guess, out)
		}
	}
	if out, err := fetch("http://"+addr+"/cgi-bin/", key); err != nil {
		t.Fatalf("the Job's script: %v\n%s", err, out)
	}
	for name, body := range files {
		got, err := os.ReadFile(filepath.Join(to, name))
		if err != nil || string(got) != body {
			t.Errorf("copied %s: %d bytes, %v; want %d bytes", name, len(got), err, len(body))
			continue
		}
		if fi, err := os.Stat(filepath.Join(to, name)); err != nil || fi.Mode().Perm() != 0o640 {
			t.Errorf("copied %s: mode %v, %v; want 0640", name, fi.Mode().Perm(), err)
		}
	}
	if link, err := os.Readlink(filepath.Join(to, "uploads", "latest")); err != nil || link != "a.txt" {
		t.Errorf("copied link latest → %q, %v; want a.txt", link, err)
	}
	if out, err := fetch("http://"+addr+"/cgi-bin/", "nothing"); err == nil {
		t.Errorf("the Job's script succeeded on a URL that serves no files:\n%s", out)
	}
	// A stream cut short (the source pod gone in the middle): the whole
	// stream, as the CGI script made it, less its second half.
	whole, err := exec.CommandContext(ctx, filepath.Join(bin, "wget"), "-q", "-O", "-", "http://"+addr+"/cgi-bin/"+key).Output()
	if err != nil || len(whole) < 1000 {
		t.Fatalf("the stream: %d bytes, %v", len(whole), err)
	}
	if err := os.WriteFile(filepath.Join(www, "cut.gz"), whole[:len(whole)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := fetch("http://"+addr+"/", "cut.gz"); err == nil {
		t.Errorf("the Job's script succeeded on half a stream:\n%s", out)
	}
}
