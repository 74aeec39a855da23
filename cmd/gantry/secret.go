package main

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/gantry-dev/gantry"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func init() { register(newSecretCmd) }

// secretBox seals secret values with AES-256-GCM before they reach the
// store, and opens them when a deployment needs them. The key lives in a
// file outside the state directory; it is created on the first secret set,
// so a server that stores no secrets never touches it.
type secretBox struct {
	store   gantry.SecretStore
	keyPath string

	mu   sync.Mutex
	aead cipher.AEAD
}

var _ gantry.SecretService = (*secretBox)(nil)

func newSecretBox(db gantry.SecretStore, keyPath, dataDir string) (*secretBox, error) {
	key, err := filepath.Abs(keyPath)
	if err != nil {
		return nil, err
	}
	data, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	if rel, err := filepath.Rel(data, key); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return nil, gantry.Errorf(gantry.EINVALID, "secrets key %s is inside the state directory %s: keep it apart (--secrets-key)", key, data)
	}
	return &secretBox{store: db, keyPath: key}, nil
}

// cipher loads the key, creating it (0600, in a 0700 directory) when create
// is set and it does not exist yet.
func (b *secretBox) cipher(create bool) (cipher.AEAD, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.aead != nil {
		return b.aead, nil
	}
	raw, err := os.ReadFile(b.keyPath)
	if errors.Is(err, os.ErrNotExist) && create {
		raw, err = b.createKey()
	}
	if err != nil {
		return nil, fmt.Errorf("secrets key %s: %w", b.keyPath, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("secrets key %s: want 64 hex digits (a 256-bit key)", b.keyPath)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	b.aead, err = cipher.NewGCM(block)
	return b.aead, err
}

func (b *secretBox) createKey() ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(b.keyPath), 0o700); err != nil {
		return nil, err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	enc := []byte(hex.EncodeToString(key) + "\n")
	f, err := os.OpenFile(b.keyPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return os.ReadFile(b.keyPath) // another server created it first
	} else if err != nil {
		return nil, err
	}
	if _, err := f.Write(enc); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	return enc, f.Close()
}

// aad binds a sealed value to where it belongs: a value copied to another
// environment's row does not open.
func aad(app, env, name string) []byte { return []byte(app + "\x00" + env + "\x00" + name) }

func (b *secretBox) SetSecret(ctx context.Context, app, env, name, value string) error {
	aead, err := b.cipher(true)
	if err != nil {
		return err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return err
	}
	return b.store.PutSecret(ctx, app, env, name, aead.Seal(nonce, nonce, []byte(value), aad(app, env, name)))
}

func (b *secretBox) ListSecrets(ctx context.Context, app, env string) ([]string, error) {
	return b.store.ListSecrets(ctx, app, env)
}

func (b *secretBox) UnsetSecret(ctx context.Context, app, env, name string) error {
	return b.store.DeleteSecret(ctx, app, env, name)
}

// OpenSecret opens the value stored for app's environment env (for the
// triggers: hooks' secrets, and the secrets a preview takes over).
func (b *secretBox) OpenSecret(ctx context.Context, app, env, name string) (string, bool) {
	return b.resolve(ctx, app, env, name)
}

// resolve opens the value stored for app's environment env.
func (b *secretBox) resolve(ctx context.Context, app, env, name string) (string, bool) {
	sealed, err := b.store.FindSecret(ctx, app, env, name)
	if err != nil {
		return "", false
	}
	v, err := b.open(app, env, name, sealed)
	return v, err == nil
}

func (b *secretBox) open(app, env, name string, sealed []byte) (string, error) {
	aead, err := b.cipher(false)
	if err != nil {
		return "", err
	}
	if len(sealed) < aead.NonceSize() {
		return "", fmt.Errorf("secret %s of %s/%s: sealed value too short", name, app, env)
	}
	n := aead.NonceSize()
	plain, err := aead.Open(nil, sealed[:n], sealed[n:], aad(app, env, name))
	if err != nil {
		return "", fmt.Errorf("secret %s of %s/%s does not open with key %s", name, app, env, b.keyPath)
	}
	return string(plain), nil
}

func newSecretCmd(m *Main) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Set, list and unset an environment's secrets (values are encrypted at rest and never shown)",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "set ENV NAME",
		Short: "Set a secret; the value is read from stdin",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if name, _, ok := strings.Cut(args[1], "="); ok {
				return usagef("secret set takes NAME, not NAME=VALUE: the value is read from stdin, which keeps it out of the shell's history and the process list (echo -n VALUE | gantry secret set %s %s)", args[0], name)
			}
			if f, ok := m.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
				fmt.Fprintf(m.Stderr, "reading the value of %s from stdin until its end (Ctrl-D); or pipe it: echo -n VALUE | gantry secret set %s %s\n", args[1], args[0], args[1])
			}
			b, err := io.ReadAll(io.LimitReader(m.Stdin, 1<<20))
			if err != nil {
				return err
			}
			value := strings.TrimRight(string(b), "\r\n")
			if value == "" {
				return usagef("secret set: pipe the value on stdin (echo -n VALUE | gantry secret set %s %s)", args[0], args[1])
			}
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			if err := c.SetSecret(cmd.Context(), app, args[0], args[1], value); err != nil {
				return err
			}
			return m.output(map[string]string{"env": args[0], "name": args[1], "status": "set"}, func(w io.Writer) {
				fmt.Fprintf(w, "secret %s set on %s\n", args[1], args[0])
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "list ENV",
		Short: "List the names of an environment's secrets",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			names, err := c.ListSecrets(cmd.Context(), app, args[0])
			if err != nil {
				return err
			}
			return m.output(names, func(w io.Writer) {
				for _, n := range names {
					fmt.Fprintln(w, n)
				}
			})
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "unset ENV NAME",
		Short: "Remove a secret from an environment",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := m.client()
			app, err := m.appName(cmd.Context(), c)
			if err != nil {
				return err
			}
			if err := c.UnsetSecret(cmd.Context(), app, args[0], args[1]); err != nil {
				return err
			}
			return m.output(map[string]string{"env": args[0], "name": args[1], "status": "unset"}, func(w io.Writer) {
				fmt.Fprintf(w, "secret %s unset on %s\n", args[1], args[0])
			})
		},
	})
	return cmd
}
