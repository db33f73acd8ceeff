package transport

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host key policies (ssh.hostKeyPolicy).
const (
	// PolicyStrict connects only to hosts whose key known_hosts already has.
	PolicyStrict = "strict"
	// PolicyAcceptNew records the key of a host seen for the first time and
	// refuses a host whose key changed (OpenSSH's StrictHostKeyChecking=accept-new).
	PolicyAcceptNew = "accept-new"
	// PolicyInsecure accepts any key; for throw-away labs only.
	PolicyInsecure = "insecure"
)

// HostKeyError says why a host's key was refused.
type HostKeyError struct {
	Host        string // inventory name
	Address     string // host:port as dialled
	KeyType     string
	Fingerprint string // SHA256 fingerprint of the key the host presented
	KnownHosts  string // the known_hosts file to fix
	// Mismatch is true when known_hosts holds a different key for the host
	// (or revoked this one); false when the host is unknown there.
	Mismatch bool
	// Known lists the file:line entries that hold the expected keys.
	Known  []string
	Policy string
}

func (e *HostKeyError) Error() string {
	host := knownhosts.Normalize(e.Address)
	if e.Mismatch {
		return fmt.Sprintf("host key of %s (%s) has CHANGED: it presented %s key %s, but %v holds another key for it. "+
			"Someone may be intercepting the connection; if the host was reinstalled, remove the old entry "+
			"(ssh-keygen -R '%s' -f %s) and connect again",
			e.Host, e.Address, e.KeyType, e.Fingerprint, e.Known, host, e.KnownHosts)
	}
	return fmt.Sprintf("host key of %s (%s) is not in %s and ssh.hostKeyPolicy is %s: it presented %s key %s. "+
		"Check that fingerprint, then add the key (ssh-keyscan -p %s %s >> %s) or set hostKeyPolicy: accept-new",
		e.Host, e.Address, e.KnownHosts, e.Policy, e.KeyType, e.Fingerprint, portOf(e.Address), hostOf(e.Address), e.KnownHosts)
}

// hostKeys checks server keys against one known_hosts file under one policy.
type hostKeys struct {
	host   string // inventory name, for messages
	policy string
	file   string // expanded path
}

// config returns the callback for ssh.ClientConfig and the host key
// algorithms to ask for. When known_hosts has keys for addr, only their
// types are asked for: otherwise the server might offer a key type that is
// not recorded, which would look like a changed key.
func (h hostKeys) config(addr string) (ssh.HostKeyCallback, []string, error) {
	if h.policy == PolicyInsecure {
		return ssh.InsecureIgnoreHostKey(), nil, nil
	}
	db, err := h.load()
	if err != nil {
		return nil, nil, err
	}
	callback := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := db(hostname, remote, key)
		if err == nil {
			return nil
		}
		var keyErr *knownhosts.KeyError
		if h.policy == PolicyAcceptNew && errors.As(err, &keyErr) && len(keyErr.Want) == 0 {
			return h.accept(hostname, remote, key)
		}
		return h.refusal(hostname, key, err)
	}
	return callback, knownAlgorithms(db, addr), nil
}

// load reads the known_hosts file; a missing file is an empty one.
func (h hostKeys) load() (ssh.HostKeyCallback, error) {
	if _, err := os.Stat(h.file); errors.Is(err, fs.ErrNotExist) {
		return knownhosts.New()
	}
	db, err := knownhosts.New(h.file)
	if err != nil {
		return nil, fmt.Errorf("read known hosts %s: %w", h.file, err)
	}
	return db, nil
}

// refusal turns a knownhosts error into one that says what to do.
func (h hostKeys) refusal(hostname string, key ssh.PublicKey, err error) error {
	e := &HostKeyError{
		Host: h.host, Address: hostname, KeyType: key.Type(),
		Fingerprint: ssh.FingerprintSHA256(key), KnownHosts: h.file, Policy: h.policy,
	}
	var keyErr *knownhosts.KeyError
	var revoked *knownhosts.RevokedError
	switch {
	case errors.As(err, &keyErr):
		e.Mismatch = len(keyErr.Want) > 0
		for _, k := range keyErr.Want {
			e.Known = append(e.Known, fmt.Sprintf("%s:%d", k.Filename, k.Line))
		}
	case errors.As(err, &revoked):
		e.Mismatch = true
		e.Known = []string{fmt.Sprintf("%s:%d (@revoked)", revoked.Revoked.Filename, revoked.Revoked.Line)}
	default:
		return fmt.Errorf("check host key of %s (%s): %w", h.host, hostname, err)
	}
	return e
}

// knownHostsMu serialises accept-new writers of this process; the flock
// below serialises them with other kprep processes. Hosts connect in
// parallel, and two appends of the same new host would leave duplicates.
var knownHostsMu sync.Mutex

// accept records an unknown host's key. Under the lock it reads the file
// again, since another connection may have recorded this host meanwhile.
func (h hostKeys) accept(hostname string, remote net.Addr, key ssh.PublicKey) error {
	knownHostsMu.Lock()
	defer knownHostsMu.Unlock()
	if err := os.MkdirAll(filepath.Dir(h.file), 0o700); err != nil {
		return fmt.Errorf("record host key of %s: %w", h.host, err)
	}
	f, err := os.OpenFile(h.file, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("record host key of %s: %w", h.host, err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", h.file, err)
	}
	defer syscall.Flock(int(f.Fd()), syscall.LOCK_UN)

	db, err := h.load()
	if err != nil {
		return err
	}
	err = db(hostname, remote, key)
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) || len(keyErr.Want) > 0 {
		if err == nil {
			return nil
		}
		return h.refusal(hostname, key, err)
	}
	content, err := os.ReadFile(h.file)
	if err != nil {
		return err
	}
	var line bytes.Buffer
	if len(content) > 0 && content[len(content)-1] != '\n' {
		line.WriteByte('\n')
	}
	line.WriteString(knownhosts.Line([]string{knownhosts.Normalize(hostname)}, key))
	line.WriteByte('\n')
	if _, err := f.Write(line.Bytes()); err != nil {
		return fmt.Errorf("record host key of %s in %s: %w", h.host, h.file, err)
	}
	return nil
}

// probeKey is a key no host has; checking it against known_hosts yields
// the keys recorded for an address.
var probeKey = sync.OnceValue(func() ssh.PublicKey {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		panic(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return k
})

// knownAlgorithms lists the host key algorithms for the key types
// known_hosts holds for addr, nil when it holds none.
func knownAlgorithms(db ssh.HostKeyCallback, addr string) []string {
	err := db(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey())
	var keyErr *knownhosts.KeyError
	if !errors.As(err, &keyErr) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range keyErr.Want {
		for _, a := range algorithmsFor(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

// algorithmsFor maps a key type to the signature algorithms that use it:
// an RSA key signs with SHA-2 on current servers and SHA-1 on old ones.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

func hostOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return host
}

func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "22"
	}
	return port
}
