package cahash

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newCert makes a self-signed certificate with key, as kubeadm makes its
// CA (RSA 2048 by default; ECDSA P-256 with EncryptionAlgorithm ECDSA-P256).
func newCert(t *testing.T, key crypto.Signer, isCA bool) []byte {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kubernetes"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  isCA,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// opensslHash is the pipeline kubeadm's documentation gives for the hash:
// openssl x509 -pubkey | openssl pkey -pubin -outform der | sha256sum.
func opensslHash(t *testing.T, certPEM []byte) string {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("openssl is not installed; the CA hash is checked against it (.ci/run installs it)")
	}
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	pubkey, err := exec.Command("openssl", "x509", "-pubkey", "-noout", "-in", path).Output()
	if err != nil {
		t.Fatalf("openssl x509 -pubkey: %v", err)
	}
	der := exec.Command("openssl", "pkey", "-pubin", "-outform", "der")
	der.Stdin = bytes.NewReader(pubkey)
	derOut, err := der.Output()
	if err != nil {
		t.Fatalf("openssl pkey: %v", err)
	}
	sum := exec.Command("sha256sum")
	sum.Stdin = bytes.NewReader(derOut)
	out, err := sum.Output()
	if err != nil {
		t.Fatalf("sha256sum: %v", err)
	}
	return Prefix + strings.Fields(string(out))[0]
}

func TestFromPEMMatchesOpenSSL(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for name, key := range map[string]crypto.Signer{"rsa-2048": rsaKey, "ecdsa-p256": ecKey} {
		t.Run(name, func(t *testing.T) {
			certPEM := newCert(t, key, true)
			got, err := FromPEM(certPEM)
			if err != nil {
				t.Fatal(err)
			}
			if want := opensslHash(t, certPEM); got != want {
				t.Errorf("FromPEM = %s, openssl says %s", got, want)
			}
			if len(got) != len(Prefix)+64 || seen[got] {
				t.Errorf("hash %s: wrong length, or the same for two keys", got)
			}
			seen[got] = true
		})
	}
}

func TestFromPEMSkipsOtherBlocksAndRefusesNonCA(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := newCert(t, key, true)
	withKeyFirst := append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8}}), ca...)
	got, err := FromPEM(withKeyFirst)
	if want, _ := FromPEM(ca); err != nil || got != want {
		t.Errorf("with another block first: %s, %v; want %s", got, err, want)
	}
	if _, err := FromPEM(newCert(t, key, false)); err == nil || !strings.Contains(err.Error(), "is not a CA") {
		t.Errorf("leaf certificate: error %v", err)
	}
	if _, err := FromPEM([]byte("not pem")); err == nil {
		t.Error("no PEM: no error")
	}
}
