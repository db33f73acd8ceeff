package starter

import (
	"context"
	"time"

	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/transport"
)

// probeTimeout bounds one machine's login and command.
const probeTimeout = 30 * time.Second

// SSHProber logs in with kprep's own SSH transport, without sudo, and runs
// the command: the same connection kprep apply will make, so a login that
// works here works there.
func SSHProber(ctx context.Context, name string, login Login, insecure bool, command string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	policy := transport.DefaultHostKeyPolicy
	if insecure {
		policy = transport.PolicyInsecure
	}
	conn, err := transport.Dial(ctx, transport.Config{
		Host:    name,
		Address: login.Address,
		SSH: inventory.SSH{
			User: login.User, Port: login.Port, PrivateKeyFile: login.KeyFile,
			Sudo: "false", HostKeyPolicy: policy,
		},
		KeepaliveInterval: -1,
	})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	res, err := conn.Run(ctx, transport.Command{Line: command})
	if err != nil {
		return "", err
	}
	return string(res.Stdout), nil
}
