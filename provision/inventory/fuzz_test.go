package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoad feeds the loader arbitrary files: it must never panic, every
// error must be a positioned ErrorList, and whatever it accepts must pass
// Validate again unchanged. Run it longer with
// go test -run '^$' -fuzz FuzzLoad -fuzztime 60s ./provision/inventory
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		data, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	// Aliases that fan out, and a merge that includes itself.
	f.Add([]byte("a: &a [x, x, x, x]\nb: &b [*a, *a, *a, *a]\nhosts: [*b, *b, *b]\n"))
	f.Add([]byte("ssh: &s {<<: *s}\n"))
	f.Add([]byte("x-h: &h {name: a, address: 10.0.0.1, roles: [control-plane]}\nhosts: [*h, *h, *h]\n"))

	opts := Options{
		LookupEnv:  func(name string) (string, bool) { return "", len(name)%2 == 0 },
		FileExists: func(path string) bool { return len(path)%2 == 0 },
		HomeDir:    func() (string, error) { return "/home/fuzz", nil },
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data, opts)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			for _, e := range list {
				if e.File != "fuzz.yaml" || e.Msg == "" {
					t.Fatalf("error without file or message: %#v", e)
				}
			}
			return
		}
		if err := Validate(c, opts); err != nil {
			t.Fatalf("Load accepted the file but Validate rejects the result: %v", err)
		}
		if c.FirstControlPlane() == nil {
			t.Fatal("a valid cluster has no control plane")
		}
	})
}
