package mirror

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// signer is a lab signing key in its own GnuPG home. The lab makes one for
// the Docker repos and one for the Kubernetes repos, as the real ones have
// different keys, so kprep's key handling is tested per repo.
type signer struct {
	home        string // GNUPGHOME
	uid         string // the key's user id, passed to gpg -u
	fingerprint string
	publicKey   []byte // ASCII-armoured public key, as served at .../gpg and repomd.xml.key
}

// labSigner returns the signing key named name, making it once (RSA 4096,
// no passphrase, no expiry) and keeping it in the cache: hosts that trusted
// it once keep trusting later builds.
func labSigner(ctx context.Context, r *runner, cacheDir, name, uid string) (*signer, error) {
	dir, err := cached(ctx, filepath.Join(cacheDir, "gpg"), name, func(ctx context.Context, tmp string) error {
		r.logf("making the lab signing key %q", uid)
		home := filepath.Join(tmp, "home")
		if err := os.Mkdir(home, 0o700); err != nil {
			return err
		}
		defer killAgent(home)
		if _, err := r.run(ctx, tmp, "gpg", "--homedir", home, "--batch", "--pinentry-mode", "loopback",
			"--passphrase", "", "--quick-gen-key", uid, "rsa4096", "sign", "never"); err != nil {
			return fmt.Errorf("make the lab signing key: %w", err)
		}
		pub, err := r.run(ctx, tmp, "gpg", "--homedir", home, "--batch", "--armor", "--export", uid)
		if err != nil {
			return err
		}
		return writeFile(filepath.Join(tmp, "public.asc"), pub, 0o644)
	})
	if err != nil {
		return nil, err
	}
	s := &signer{home: filepath.Join(dir, "home"), uid: uid}
	if s.publicKey, err = os.ReadFile(filepath.Join(dir, "public.asc")); err != nil {
		return nil, fmt.Errorf("lab signing key %s: %w", dir, err)
	}
	out, err := r.run(ctx, dir, "gpg", "--homedir", s.home, "--batch", "--with-colons", "--fingerprint", uid)
	if err != nil {
		return nil, err
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Split(l, ":"); len(f) > 9 && f[0] == "fpr" {
			s.fingerprint = f[9]
			break
		}
	}
	if s.fingerprint == "" {
		return nil, fmt.Errorf("lab signing key %s: gpg printed no fingerprint", dir)
	}
	return s, nil
}

// signRPMs adds the key's signature to each rpm's header.
func (s *signer) signRPMs(ctx context.Context, r *runner, files ...string) error {
	gpg, err := exec.LookPath("gpg")
	if err != nil {
		return fmt.Errorf("sign rpms: %w (apt-get install gnupg)", err)
	}
	// Debian's rpm points %__gpg at gpg2, which Debian no longer ships.
	args := []string{"--addsign", "--define", "__gpg " + gpg, "--define", "_gpg_name " + s.uid, "--define", "_gpg_path " + s.home}
	if _, err := r.run(ctx, filepath.Dir(files[0]), "rpmsign", append(args, files...)...); err != nil {
		return fmt.Errorf("sign rpms: %w", err)
	}
	return nil
}

// detachSign writes an ASCII-armoured detached signature of file to out
// (repomd.xml.asc, Release.gpg).
func (s *signer) detachSign(ctx context.Context, r *runner, file, out string) error {
	_, err := r.run(ctx, filepath.Dir(file), "gpg", "--homedir", s.home, "--batch", "--yes", "-u", s.uid,
		"--digest-algo", "SHA512", "--armor", "--detach-sign", "--output", out, file)
	return err
}

// clearSign writes file signed inline to out (InRelease).
func (s *signer) clearSign(ctx context.Context, r *runner, file, out string) error {
	_, err := r.run(ctx, filepath.Dir(file), "gpg", "--homedir", s.home, "--batch", "--yes", "-u", s.uid,
		"--digest-algo", "SHA512", "--clearsign", "--output", out, file)
	return err
}

// close stops the gpg-agent that gpg started for this key's home.
func (s *signer) close() { killAgent(s.home) }

// killAgent stops the gpg-agent of one GnuPG home (only that one).
func killAgent(home string) {
	_ = exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
}
