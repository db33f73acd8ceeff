package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/kprep/kprep/test/lab/instance"
)

// stateFile is the lab's record of what it made, inside the state folder.
const stateFile = "state.json"

// state is what a running lab remembers: enough for Open to use it and for
// Down to undo it. It is saved after every step of Up, so that a crash
// leaves a record (Down also looks for leftovers by name).
type state struct {
	mu sync.Mutex

	// Instance is the lab instance (KPREP_LAB_ID) whose names the lab
	// took; records from before instances had none and were 0.
	Instance instance.ID `json:"instance"`
	StateDir string      `json:"stateDir"`
	CacheDir string      `json:"cacheDir"`
	// Ready is set when Up finished.
	Ready bool        `json:"ready"`
	Hosts []hostState `json:"hosts"`
	// Mirror and Registry are the mirror's HTTP server and docker-registry.
	Mirror   *Proc `json:"mirror,omitempty"`
	Registry *Proc `json:"registry,omitempty"`
	// MirrorRoot and MirrorBin are the built mirror's folders.
	MirrorRoot string `json:"mirrorRoot,omitempty"`
	MirrorBin  string `json:"mirrorBin,omitempty"`
	// Sysctls are machine settings that Up raised before the instances
	// shared them (see sysctl.go): Down restores them from an old record.
	Sysctls []sysctlChange `json:"sysctls,omitempty"`
}

// hostState is one host.
type hostState struct {
	Name    string   `json:"name"`
	Address string   `json:"address"`
	OS      string   `json:"os"`
	Roles   []string `json:"roles"`
	// User is the SSH user the inventory gives the host.
	User string `json:"user"`
	// SudoPassword is set when the user's sudo asks for a password.
	SudoPassword bool `json:"sudoPassword,omitempty"`
	// VM is set for a VM host (QEMU), whose OS names a VM kind.
	VM bool `json:"vm,omitempty"`
	// Nspawn is the process that runs the host: systemd-nspawn, or QEMU
	// for a VM host. Leader is an nspawn host's PID 1 (none for a VM).
	Nspawn Proc `json:"nspawn"`
	Leader Proc `json:"leader"`
}

// sysctlChange is a machine sysctl Up changed.
type sysctlChange struct {
	Path     string `json:"path"`
	Original string `json:"original"`
	Set      string `json:"set"`
}

// hostDir is the folder of a host's files in the state folder.
func hostDir(stateDir, host string) string { return filepath.Join(stateDir, "hosts", host) }

// loadState reads the state of the lab in stateDir; os.ErrNotExist when
// there is none.
func loadState(stateDir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(stateDir, stateFile))
	if err != nil {
		return nil, err
	}
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("read lab state %s: %w", filepath.Join(stateDir, stateFile), err)
	}
	return &s, nil
}

// save writes the state atomically.
func (s *state) save() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(s.StateDir, stateFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save lab state: %w", err)
	}
	return os.Rename(tmp, path)
}

// update changes the state under its lock and saves it.
func (s *state) update(f func(*state)) error {
	s.mu.Lock()
	f(s)
	s.mu.Unlock()
	return s.save()
}

// hosts returns a copy of the hosts, safe while Up still boots some.
func (s *state) hosts() []hostState {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]hostState(nil), s.Hosts...)
}

// errNoLab says there is no lab in a state folder.
var errNoLab = errors.New("no lab is up")
