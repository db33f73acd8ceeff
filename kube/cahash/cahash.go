// Package cahash computes the hash by which a kubeadm join pins the
// cluster's CA: "sha256:" and the hex SHA-256 of the CA certificate's
// SubjectPublicKeyInfo, as kubeadm's --discovery-token-ca-cert-hash and
// caCertHashes take it. kprep computes it from ca.crt itself rather than
// parse it from `kubeadm token create --print-join-command`, and never joins
// without it (no unsafeSkipCAVerification).
package cahash

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
)

// Prefix starts every hash: the algorithm, as kubeadm names it.
const Prefix = "sha256:"

// FromPEM returns the hash of the first certificate in a PEM file such as
// /etc/kubernetes/pki/ca.crt. It refuses a certificate that is not a CA:
// pinning a leaf would let a join trust the wrong key.
func FromPEM(data []byte) (string, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return "", errors.New("ca.crt: no PEM CERTIFICATE block")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("ca.crt: %w", err)
		}
		if !cert.IsCA {
			return "", fmt.Errorf("ca.crt: the certificate of %q is not a CA", cert.Subject.CommonName)
		}
		return FromCertificate(cert), nil
	}
}

// FromCertificate returns the hash of cert's public key.
func FromCertificate(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return Prefix + hex.EncodeToString(sum[:])
}
