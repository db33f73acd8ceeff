package main

import (
	"time"

	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/transport"
)

// commandLogger shows remote commands as they finish (-v).
type commandLogger interface {
	Command(host, line string, status int, took time.Duration)
}

func newDialer(logger commandLogger) provision.Dialer {
	d := provision.SSHDialer{}
	if logger != nil {
		d.LogCommand = func(l transport.CommandLog) { logger.Command(l.Host, l.Line, l.Status, l.Duration) }
	}
	return d
}
