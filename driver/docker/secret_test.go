package docker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gantry-dev/gantry"
	"github.com/gantry-dev/gantry/driver/docker"
	"github.com/gantry-dev/gantry/internal/dockertest"
	"github.com/gantry-dev/gantry/internal/drivertest"
)

// TestSecretsStayOut: a secret reaches the instance, and nothing the driver
// logs, returns or reports holds it: not the handle, not Find, not Inspect,
// not an error about a bad variable.
func TestSecretsStayOut(t *testing.T) {
	env := dockertest.Get(t)
	var logs syncBuffer
	d, err := docker.New(env.Engine.Host, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := context.Background()
	secret := fmt.Sprintf("s3cret-%d", time.Now().UnixNano())
	s := spec("secrets", "blue", "web", 0, drivertest.FreePort(t))
	s.Vars["DATABASE_URL"] = secret
	inst := MustStart(t, d, s)
	drivertest.WaitUp(t, inst)
	if got := drivertest.MustGet(t, inst, "/env?name=DATABASE_URL"); got != secret {
		t.Fatalf("the instance sees DATABASE_URL=%q, want the secret", got)
	}
	st, err := d.Inspect(ctx, inst)
	if err != nil {
		t.Fatal(err)
	}
	found, err := d.Find(ctx, appName, "secrets", "")
	if err != nil {
		t.Fatal(err)
	}
	bad := s
	bad.Index = 1
	bad.Vars = map[string]string{"NOT=VALID": secret}
	_, startErr := d.Start(ctx, bad)
	if startErr == nil {
		t.Fatal("Start with an invalid variable name succeeded")
	}
	if err := d.Stop(ctx, inst, gantry.StopSpec{Signal: "SIGTERM", Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	reported, _ := json.Marshal([]any{inst, st, found, startErr.Error()})
	for what, text := range map[string]string{"driver logs": logs.String(), "returned values": string(reported)} {
		if strings.Contains(text, secret) {
			t.Errorf("%s hold the secret:\n%s", what, text)
		}
	}
	if !strings.Contains(logs.String(), "instance started") {
		t.Errorf("the driver logged nothing, so this test checks nothing:\n%s", logs.String())
	}
}

type syncBuffer = drivertest.SyncBuffer
