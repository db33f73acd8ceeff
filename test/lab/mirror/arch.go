package mirror

import (
	"fmt"
	"runtime"
)

// arch names one machine architecture in each naming scheme the mirror needs.
type arch struct {
	Go  string // GOARCH: amd64, arm64
	RPM string // rpm and yum repo paths: x86_64, aarch64
	Deb string // dpkg and apt: amd64, arm64
}

// archFor maps a GOARCH to the names rpm and dpkg use.
func archFor(goarch string) (arch, error) {
	switch goarch {
	case "amd64":
		return arch{Go: "amd64", RPM: "x86_64", Deb: "amd64"}, nil
	case "arm64":
		return arch{Go: "arm64", RPM: "aarch64", Deb: "arm64"}, nil
	}
	return arch{}, fmt.Errorf("architecture %q: the mirror builds amd64 and arm64 only", goarch)
}

// hostDebArch is the machine's own dpkg architecture: apt's sources give
// it unqualified, every other one as a foreign architecture.
func hostDebArch() string {
	a, err := archFor(runtime.GOARCH)
	if err != nil {
		return runtime.GOARCH
	}
	return a.Deb
}
