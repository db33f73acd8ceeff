package starter

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// sshEntry is one Host block of `vagrant ssh-config`.
type sshEntry struct {
	Host         string
	HostName     string
	User         string
	Port         int
	IdentityFile string // the first one: the key Vagrant inserted, or its insecure key
	// NoHostKeyCheck is true when Vagrant turns host key checking off
	// (StrictHostKeyChecking no, UserKnownHostsFile /dev/null), as it does
	// for machines whose keys change with every `vagrant up`.
	NoHostKeyCheck bool
	ProxyCommand   string
}

// parseSSHConfig reads the OpenSSH configuration `vagrant ssh-config`
// prints: a Host line per machine, then indented "Key value" lines. Keys are
// case-insensitive and a value may be double-quoted (an IdentityFile path
// with spaces).
func parseSSHConfig(out []byte) ([]sshEntry, error) {
	var entries []sshEntry
	err := eachLine(bytes.NewReader(out), func(line int, text string) error {
		key, value, ok := splitKeyword(text)
		if !ok {
			return fmt.Errorf("line %d: %q is not a keyword and a value", line, text)
		}
		if strings.EqualFold(key, "Host") {
			entries = append(entries, sshEntry{Host: value, Port: 22})
			return nil
		}
		if len(entries) == 0 {
			return fmt.Errorf("line %d: %s comes before any Host line", line, key)
		}
		e := &entries[len(entries)-1]
		switch strings.ToLower(key) {
		case "hostname":
			e.HostName = value
		case "user":
			e.User = value
		case "port":
			p, err := strconv.Atoi(value)
			if err != nil || p < 1 || p > 65535 {
				return fmt.Errorf("line %d: Port %q is not a port", line, value)
			}
			e.Port = p
		case "identityfile":
			if e.IdentityFile == "" {
				e.IdentityFile = value
			}
		case "stricthostkeychecking":
			e.NoHostKeyCheck = strings.EqualFold(value, "no")
		case "proxycommand":
			e.ProxyCommand = value
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.HostName == "" {
			return nil, fmt.Errorf("the Host %s block has no HostName", e.Host)
		}
	}
	return entries, nil
}

// eachLine calls fn with each line of r that is neither blank nor a #
// comment, trimmed, and its line number; it stops at fn's first error.
func eachLine(r io.Reader, fn func(line int, text string) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		if err := fn(line, text); err != nil {
			return err
		}
	}
	return sc.Err()
}

// splitKeyword splits `Key value` or `Key=value`, unquoting the value.
func splitKeyword(s string) (key, value string, ok bool) {
	i := strings.IndexAny(s, " \t=")
	if i <= 0 {
		return "", "", false
	}
	key = s[:i]
	value = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(s[i:]), "="))
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return key, value, value != ""
}
