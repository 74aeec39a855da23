package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/user"
	"strconv"
	"time"

	"github.com/gantry-dev/gantry"
)

// maxSocketPath is the longest unix socket path every platform accepts
// (sun_path is 104 bytes on the BSDs, 108 on Linux).
const maxSocketPath = 103

// ListenUnix listens on a unix socket at path that only the owner may
// connect to. A stale socket left by a crashed server is replaced; a live
// one is an error, since two servers must not share one state directory.
func ListenUnix(path string) (net.Listener, error) {
	if len(path) > maxSocketPath {
		return nil, fmt.Errorf("unix socket path %s is longer than %d bytes: use a shorter --data directory", path, maxSocketPath)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("another gantry server is listening on %s", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	// The directory's umask leaves the socket group- and world-readable at
	// most (connecting needs write permission); 0600 states the intent.
	// The peer's uid is what grants admin, so the mode is a second fence.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// LocalConnContext is an http.Server ConnContext for the unix socket: a
// peer running as the server's own user is the local admin, named after
// the OS user; any other peer gets no identity and needs a token.
func LocalConnContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	uid, ok := peerUID(uc)
	if !ok || uid != os.Getuid() {
		return ctx
	}
	return gantry.WithIdentity(ctx, LocalIdentity(uid))
}

// LocalIdentity is the admin identity of the OS user uid.
func LocalIdentity(uid int) *gantry.Identity {
	name := "uid-" + strconv.Itoa(uid)
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
	}
	return &gantry.Identity{Name: name, Role: gantry.RoleAdmin, Local: true}
}
