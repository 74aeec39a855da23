package api

import (
	"context"
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"testing"

	"github.com/gantry-dev/gantry"
)

// TestUnixSocketIsLocalAdmin: over the socket, a client of the server's own
// uid is admin without a token and acts under its OS user name.
func TestUnixSocketIsLocalAdmin(t *testing.T) {
	f := newAccessFixture(t)
	path := filepath.Join(t.TempDir(), "gantry.sock")
	ln, err := ListenUnix(path)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: f.srv.Handler(), ConnContext: LocalConnContext}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", fi.Mode().Perm())
	}
	c := NewClient("unix://"+path, "")
	id, err := c.WhoAmI(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := "uid-" + itoa(os.Getuid())
	if u, err := user.Current(); err == nil {
		want = u.Username
	}
	if id.Name != want || id.Role != gantry.RoleAdmin || !id.Local {
		t.Errorf("identity over the socket: %+v, want local admin %s", id, want)
	}
	if _, err := c.CreateToken(context.Background(), CreateTokenRequest{Name: "ci", Role: "deployer"}); err != nil {
		t.Errorf("create a token over the socket: %v", err)
	}
	// A second server on the same socket is refused; a stale one is replaced.
	if _, err := ListenUnix(path); err == nil {
		t.Error("ListenUnix on a live socket succeeded, want an error")
	}
	hs.Close()
	ln2, err := ListenUnix(path)
	if err != nil {
		t.Fatalf("ListenUnix on a stale socket: %v", err)
	}
	ln2.Close()
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
