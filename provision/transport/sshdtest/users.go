package sshdtest

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Names of the local accounts EnsureUsers creates.
const (
	// UserSudoNoPassword logs in with the server's client key and may run
	// anything through sudo without a password.
	UserSudoNoPassword = "kpreptest"
	// UserSudoPassword logs in with the client key or Users.Password, and
	// sudo asks it for that password every time (no cached credentials).
	UserSudoPassword = "kpreppw"
)

// stateDir keeps the test accounts' password, readable by root only, so
// that parallel test processes agree on it without it being a constant
// anyone could log in with.
const stateDir = "/run/kprep-sshdtest"

// sudoersFile is the drop-in that gives the test accounts their sudo rights.
const sudoersFile = "/etc/sudoers.d/kprep-sshdtest"

// Users are the test accounts and the password of UserSudoPassword.
type Users struct {
	SudoNoPassword string
	SudoPassword   string
	Password       string
}

// EnsureUsers creates the test accounts and their sudo rules if they are
// missing. It is idempotent and safe to call from parallel test processes
// (a lock file serialises them); the accounts stay for the next run, which
// is cheaper than creating them per test. RemoveUsers deletes them.
func EnsureUsers(t testing.TB) Users {
	t.Helper()
	skipUnlessPossible(t)
	users, err := ensureUsers()
	if err != nil {
		t.Fatalf("sshdtest: creating test users: %v", err)
	}
	return users
}

func ensureUsers() (Users, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return Users{}, err
	}
	lock, err := os.OpenFile(filepath.Join(stateDir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return Users{}, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return Users{}, err
	}
	password, err := readOrCreatePassword(filepath.Join(stateDir, "password"))
	if err != nil {
		return Users{}, err
	}
	for _, name := range []string{UserSudoNoPassword, UserSudoPassword} {
		if err := exec.Command("id", "-u", name).Run(); err == nil {
			continue
		}
		if out, err := exec.Command("useradd", "--create-home", "--shell", "/bin/bash", name).CombinedOutput(); err != nil {
			return Users{}, fmt.Errorf("useradd %s: %v: %s", name, err, out)
		}
	}
	// sshd without PAM refuses accounts whose password field is locked
	// ("!"), which is what useradd leaves; "*" is unlocked but matches no
	// password.
	if out, err := exec.Command("usermod", "--password", "*", UserSudoNoPassword).CombinedOutput(); err != nil {
		return Users{}, fmt.Errorf("usermod %s: %v: %s", UserSudoNoPassword, err, out)
	}
	chpasswd := exec.Command("chpasswd")
	chpasswd.Stdin = strings.NewReader(UserSudoPassword + ":" + password + "\n")
	if out, err := chpasswd.CombinedOutput(); err != nil {
		return Users{}, fmt.Errorf("chpasswd %s: %v: %s", UserSudoPassword, err, out)
	}
	rules := fmt.Sprintf("%s ALL=(ALL:ALL) NOPASSWD: ALL\n"+
		"Defaults:%s timestamp_timeout=0, !lecture\n"+
		"%s ALL=(ALL:ALL) ALL\n", UserSudoNoPassword, UserSudoPassword, UserSudoPassword)
	if err := writeSudoers(rules); err != nil {
		return Users{}, err
	}
	return Users{SudoNoPassword: UserSudoNoPassword, SudoPassword: UserSudoPassword, Password: password}, nil
}

func readOrCreatePassword(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil && len(b) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	raw := make([]byte, 12)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	password := "Kp-" + hex.EncodeToString(raw)
	return password, os.WriteFile(path, []byte(password+"\n"), 0o600)
}

// writeSudoers checks the rules with visudo before putting them in place, so
// a mistake cannot break sudo on the machine.
func writeSudoers(rules string) error {
	if old, err := os.ReadFile(sudoersFile); err == nil && string(old) == rules {
		return nil
	}
	tmp := sudoersFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(rules), 0o440); err != nil {
		return err
	}
	if out, err := exec.Command("visudo", "-c", "-q", "-f", tmp).CombinedOutput(); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("visudo rejects the test rules: %v: %s", err, out)
	}
	return os.Rename(tmp, sudoersFile)
}

// RemoveUsers deletes the test accounts, their homes and sudo rules (for a
// CI clean-up step; tests leave the accounts in place).
func RemoveUsers() error {
	var errs []error
	for _, name := range []string{UserSudoNoPassword, UserSudoPassword} {
		if exec.Command("id", "-u", name).Run() != nil {
			continue
		}
		if out, err := exec.Command("userdel", "--remove", name).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("userdel %s: %v: %s", name, err, out))
		}
	}
	if err := os.Remove(sudoersFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		errs = append(errs, err)
	}
	if err := os.RemoveAll(stateDir); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
