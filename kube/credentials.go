package kube

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/kprep/kprep/kube/cahash"
	"github.com/kprep/kprep/kube/kubeadmconfig"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/provision/transport"
)

// Join credentials come from the first control plane, through the
// engine's shared values: made once per run by the first host that needs
// them, masked in every log, and the token deleted when the run ends.

// joinCredentials returns what h's kubeadm join needs: the run's bootstrap
// token, the CA's hash computed by kprep from ca.crt, and for a control
// plane a certificate key of its own.
func joinCredentials(ctx context.Context, t provision.Target, c *inventory.Cluster, h *inventory.Host) (kubeadmconfig.Credentials, error) {
	var creds kubeadmconfig.Credentials
	first := c.FirstControlPlane()
	cp, err := t.Peer(first.Name)
	if err != nil {
		return creds, err
	}
	creds.Token, err = t.Once(ctx, "kube/join-token", func(ctx context.Context) (provision.Shared, error) {
		return makeJoinToken(ctx, cp, c)
	})
	if err != nil {
		return creds, fmt.Errorf("make a join token on %s: %w", first.Name, err)
	}
	creds.CACertHash, err = t.Once(ctx, "kube/ca-cert-hash", func(ctx context.Context) (provision.Shared, error) {
		res, err := cp.Run(ctx, transport.Command{Line: "cat " + caCert})
		if err != nil {
			return provision.Shared{}, err
		}
		hash, err := cahash.FromPEM(res.Stdout)
		return provision.Shared{Value: hash}, err
	})
	if err != nil {
		return creds, fmt.Errorf("read the cluster CA on %s: %w", first.Name, err)
	}
	if kubeadmconfig.RoleOf(c, h) == kubeadmconfig.RoleJoinControlPlane {
		creds.CertificateKey, err = t.Once(ctx, "kube/certificate-key/"+h.Name, func(ctx context.Context) (provision.Shared, error) {
			return uploadCerts(ctx, cp)
		})
		if err != nil {
			return creds, fmt.Errorf("upload the control-plane certificates on %s: %w", first.Name, err)
		}
	}
	return creds, nil
}

// makeJoinToken creates a bootstrap token that lives kubernetes.joinTokenTTL
// (15 minutes at most) and is deleted when the run ends.
func makeJoinToken(ctx context.Context, cp provision.Executor, c *inventory.Cluster) (provision.Shared, error) {
	id, secret := randomToken(6), randomToken(16)
	token := id + "." + secret
	line := fmt.Sprintf("kubeadm token create %s --ttl %s --description %s --kubeconfig %s",
		token, c.Kubernetes.JoinTokenTTL, shell.Quote("kprep apply: the joins of one run"), adminConf)
	if _, err := cp.Run(ctx, transport.Command{Line: line, Secrets: []string{token, secret}}); err != nil {
		return provision.Shared{}, err
	}
	return provision.Shared{Value: token, Secret: true, Release: func(ctx context.Context) error {
		_, err := cp.Run(ctx, transport.Command{Line: "kubeadm token delete " + id + " --kubeconfig " + adminConf})
		return err
	}}, nil
}

// uploadCerts stores the control-plane certificates in the cluster,
// encrypted with a fresh certificate key, for one control-plane join; the
// Secret holding them is deleted when the run ends.
func uploadCerts(ctx context.Context, cp provision.Executor) (provision.Shared, error) {
	key := randomHex(32)
	line := "kubeadm init phase upload-certs --upload-certs --certificate-key " + key + " --kubeconfig " + adminConf
	if _, err := cp.Run(ctx, transport.Command{Line: line, Secrets: []string{key}}); err != nil {
		return provision.Shared{}, err
	}
	return provision.Shared{Value: key, Secret: true, Release: func(ctx context.Context) error {
		_, err := cp.Run(ctx, transport.Command{Line: kubectl(adminConf, "-n", "kube-system", "delete", "secret", "kubeadm-certs", "--ignore-not-found")})
		return err
	}}, nil
}

// randomToken returns n characters of a bootstrap token ([a-z0-9]), each
// equally likely (bytes past the last whole multiple of 36 are drawn again).
func randomToken(n int) string {
	const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
	out := make([]byte, 0, n)
	var b [1]byte
	for len(out) < n {
		if _, err := rand.Read(b[:]); err != nil {
			panic(err) // crypto/rand does not fail on Linux
		}
		if int(b[0]) < 256/len(alphabet)*len(alphabet) {
			out = append(out, alphabet[int(b[0])%len(alphabet)])
		}
	}
	return string(out)
}

func randomHex(bytes int) string {
	raw := make([]byte, bytes)
	if _, err := rand.Read(raw); err != nil {
		panic(err)
	}
	return hex.EncodeToString(raw)
}
