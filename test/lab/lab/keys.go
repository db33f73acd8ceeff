package lab

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// Files of a lab's credentials in its state folder.
const (
	keyFileName          = "id_ed25519"
	knownHostsFileName   = "known_hosts"
	sudoPasswordFileName = "sudo-password"
	// SudoPasswordEnv is the variable the inventory names for the host
	// whose sudo asks for a password; the password is in the state folder.
	SudoPasswordEnv = "KPREP_LAB_SUDO_PASSWORD"
)

// writeLabKey makes the lab's SSH key pair (ed25519, OpenSSH format) and
// returns the public key as an authorized_keys line.
func writeLabKey(stateDir string) ([]byte, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "kprep-lab")
	if err != nil {
		return nil, fmt.Errorf("encode the lab key: %w", err)
	}
	path := filepath.Join(stateDir, keyFileName)
	if err := os.WriteFile(path, pem.EncodeToMemory(block), 0o600); err != nil {
		return nil, fmt.Errorf("write the lab key: %w", err)
	}
	sshPub, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil, err
	}
	line := ssh.MarshalAuthorizedKey(sshPub)
	line = append(line[:len(line)-1], []byte(" kprep-lab\n")...)
	if err := os.WriteFile(path+".pub", line, 0o644); err != nil {
		return nil, fmt.Errorf("write the lab key: %w", err)
	}
	return line, nil
}

// writeSudoPassword makes a random password for the host whose sudo asks
// for one and keeps it in the state folder (mode 0600); it never goes into
// the inventory, logs or output.
func writeSudoPassword(stateDir string) (string, error) {
	const alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	for i := range b {
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[n.Int64()]
	}
	if err := os.WriteFile(filepath.Join(stateDir, sudoPasswordFileName), b, 0o600); err != nil {
		return "", fmt.Errorf("write the sudo password: %w", err)
	}
	return string(b), nil
}
