package transport_test

import (
	"context"
	"testing"

	"github.com/kprep/kprep/provision/transport"
	"github.com/kprep/kprep/provision/transport/sshdtest"
)

// BenchmarkRun measures command round trips over one connection: each is a
// new session on the same TCP connection, as the engine uses it. "plain" is
// a user without sudo, the session's own cost; root's cost includes its
// login shell's start-up files (bash reads ~/.bashrc for ssh commands).
func BenchmarkRun(b *testing.B) {
	srv := sshdtest.Start(b, sshdtest.Options{})
	users := sshdtest.EnsureUsers(b)
	for name, user := range map[string]string{"root": "root", "sudo": users.SudoNoPassword, "plain": users.SudoNoPassword} {
		b.Run(name, func(b *testing.B) {
			cfg := configFor(srv, user)
			if name == "plain" {
				cfg.SSH.Sudo = "false"
			}
			c := dial(b, cfg)
			ctx := context.Background()
			for b.Loop() {
				if _, err := c.Run(ctx, transport.Command{Line: "true"}); err != nil {
					b.Fatal(err)
				}
			}
			if st := c.Stats(); st.Dials != 1 {
				b.Fatalf("Stats.Dials = %d, want 1", st.Dials)
			}
		})
	}
}

// BenchmarkWriteFile measures atomic writes of a small config file.
func BenchmarkWriteFile(b *testing.B) {
	srv := sshdtest.Start(b, sshdtest.Options{})
	users := sshdtest.EnsureUsers(b)
	data := make([]byte, 4096)
	for _, user := range []string{"root", users.SudoNoPassword} {
		b.Run(user, func(b *testing.B) {
			c := dial(b, configFor(srv, user))
			p := b.TempDir() + "/bench.conf"
			ctx := context.Background()
			for b.Loop() {
				if err := c.WriteFile(ctx, p, data, transport.WriteOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
