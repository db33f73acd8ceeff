package transport

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// login is what one SSH login (to the host or its bastion) needs.
type login struct {
	user        string
	keyFile     string // "" for none; "~/" is expanded
	passwordEnv string // the NAME of the variable that holds the password
}

// authMethods builds the ways to log in, in OpenSSH's order: public keys
// (the key file first, then the agent's keys), password, then
// keyboard-interactive answered with the same password. The returned
// function closes the agent connection once the login is done.
func authMethods(l login, lookup func(string) (string, bool)) ([]ssh.AuthMethod, func(), error) {
	var signers []ssh.Signer
	if l.keyFile != "" {
		s, err := readPrivateKey(l.keyFile)
		if err != nil {
			return nil, nil, err
		}
		signers = append(signers, s)
	}

	done := func() {}
	var agentSigners func() ([]ssh.Signer, error)
	if sock, ok := lookup("SSH_AUTH_SOCK"); ok && sock != "" {
		conn, err := net.Dial("unix", sock)
		switch {
		case err == nil:
			agentSigners = agent.NewClient(conn).Signers
			done = func() { conn.Close() }
		case len(signers) == 0:
			return nil, nil, fmt.Errorf("no private key file is set and the ssh agent at SSH_AUTH_SOCK=%s does not answer: %w", sock, err)
		}
	}

	var methods []ssh.AuthMethod
	if len(signers) > 0 || agentSigners != nil {
		methods = append(methods, ssh.PublicKeysCallback(func() ([]ssh.Signer, error) {
			all := signers
			if agentSigners != nil {
				fromAgent, err := agentSigners()
				if err != nil && len(all) == 0 {
					return nil, fmt.Errorf("list ssh agent keys: %w", err)
				}
				all = append(all[:len(all):len(all)], fromAgent...)
			}
			return all, nil
		}))
	}

	password, err := secretFromEnv(l.passwordEnv, "passwordEnv", lookup)
	if err != nil {
		done()
		return nil, nil, err
	}
	if password != "" {
		methods = append(methods,
			ssh.Password(password),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, echos []bool) ([]string, error) {
				// A PAM password prompt does not echo; a question that
				// echoes is not asking for the password, and we know no
				// other answer.
				answers := make([]string, len(questions))
				for i := range questions {
					if !echos[i] {
						answers[i] = password
					}
				}
				return answers, nil
			}))
	}
	if len(methods) == 0 {
		return nil, nil, fmt.Errorf("no way to log in as %s: set ssh.privateKeyFile, run an ssh agent (SSH_AUTH_SOCK), or set ssh.passwordEnv", l.user)
	}
	return methods, done, nil
}

// readPrivateKey reads an unencrypted private key in any format OpenSSH
// writes (ed25519, RSA, ECDSA). kprep never prompts, so an encrypted key
// must come through the agent instead.
func readPrivateKey(file string) (ssh.Signer, error) {
	path, err := expandHome(file)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read ssh.privateKeyFile: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(b)
	var missing *ssh.PassphraseMissingError
	if errors.As(err, &missing) {
		return nil, fmt.Errorf("private key %s is encrypted with a passphrase and kprep does not prompt for it: "+
			"load it into ssh-agent (ssh-add %s) and leave ssh.privateKeyFile empty, or use a key without a passphrase", path, path)
	}
	if err != nil {
		return nil, fmt.Errorf("private key %s: %w", path, err)
	}
	return signer, nil
}

// secretFromEnv returns the value of the variable named by a *Env setting.
// The setting holds a name, never the secret, so the inventory can be
// shared; a named variable that is unset is an error, not an empty secret.
func secretFromEnv(name, field string, lookup func(string) (string, bool)) (string, error) {
	if name == "" {
		return "", nil
	}
	v, ok := lookup(name)
	if !ok || v == "" {
		return "", fmt.Errorf("ssh.%s names the environment variable %s, which is not set", field, name)
	}
	return v, nil
}

// expandHome turns a leading "~/" into the user's home folder, as ssh does.
func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand %s: %w", p, err)
	}
	return filepath.Join(home, strings.TrimPrefix(p, "~")), nil
}
