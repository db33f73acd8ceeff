package provision

import (
	"context"
	"os"
	"time"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// DefaultCommandTimeout bounds a remote command that sets no timeout of
// its own. Package installs from a slow mirror can take minutes.
const DefaultCommandTimeout = 15 * time.Minute

// SSHDialer opens one SSH connection per host with the host's merged
// inventory settings.
type SSHDialer struct {
	// LogCommand, when set, hears of every command run (for -v).
	LogCommand func(transport.CommandLog)
	// LookupEnv resolves the variables the inventory names for passwords;
	// nil means the process environment.
	LookupEnv func(string) (string, bool)
}

// Dial implements Dialer.
func (d SSHDialer) Dial(ctx context.Context, h *inventory.Host) (Conn, error) {
	lookup := d.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	conn, err := transport.Dial(ctx, transport.Config{
		Host:           h.Name,
		Address:        h.LoginAddress(),
		SSH:            h.Connection,
		LookupEnv:      lookup,
		LogCommand:     d.LogCommand,
		CommandTimeout: DefaultCommandTimeout,
	})
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// The real connection is both a Conn and a Starter (the lock session).
var (
	_ Conn    = (*transport.Conn)(nil)
	_ Starter = (*transport.Conn)(nil)
)
