package runtime

import (
	"fmt"
	"io/fs"
	"time"

	"github.com/kprep/kprep/provision/shell"
)

// downloadTimeout bounds one download on a host.
const downloadTimeout = 10 * time.Minute

// fetchCommand returns a shell line that downloads url on the host into
// dest, a shell word ("$d/x.tgz", or a path quoted with shell.Quote),
// replaced only once the download is complete, with the given mode.
// Hosts differ in what they have: curl on most, wget on some minimal
// images, and apt's own helper on every apt host even without either.
func fetchCommand(url, dest string, mode fs.FileMode) string {
	u, d := shell.Quote(url), dest
	return fmt.Sprintf(`tmp=$(mktemp %[2]s.kprep-XXXXXX) && `+
		`{ if command -v curl >/dev/null; then curl -fsSL --retry 3 -o "$tmp" %[1]s; `+
		`elif command -v wget >/dev/null; then wget -q -O "$tmp" %[1]s; `+
		`elif [ -x /usr/lib/apt/apt-helper ]; then /usr/lib/apt/apt-helper download-file %[1]s "$tmp"; `+
		`else echo "neither curl nor wget is installed" >&2; false; fi; } && `+
		`chmod %04[3]o "$tmp" && mv -f "$tmp" %[2]s || { rm -f "$tmp"; false; }`, u, d, mode)
}
