package runtime

import (
	"sort"
	"strings"

	"github.com/hashicorp/go-version"
)

// upstreamVersion returns the upstream part of a package version, the part
// the inventory pins: 3:24.0.9-1.el9 and 5:24.0.9-1~ubuntu.22.04~jammy are
// both 24.0.9. The epoch goes before the colon; the release (rpm) or
// revision (deb) after the last hyphen.
func upstreamVersion(pkgVersion string) string {
	v := pkgVersion
	if _, rest, ok := strings.Cut(v, ":"); ok {
		v = rest
	}
	if i := strings.LastIndex(v, "-"); i > 0 {
		v = v[:i]
	}
	return v
}

// sameVersion reports whether an installed package version carries the
// upstream version the inventory asks for, compared as versions (24.0 and
// 24.0.0 are the same) rather than as text.
func sameVersion(pkgVersion, want string) bool {
	have, err1 := version.NewVersion(upstreamVersion(pkgVersion))
	w, err2 := version.NewVersion(want)
	if err1 != nil || err2 != nil {
		return upstreamVersion(pkgVersion) == want
	}
	return have.Equal(w)
}

// newer reports whether want is a newer upstream version than the installed
// package's: the difference between an upgrade and a downgrade.
func newer(want, pkgVersion string) bool {
	have, err1 := version.NewVersion(upstreamVersion(pkgVersion))
	w, err2 := version.NewVersion(want)
	if err1 != nil || err2 != nil {
		return want > upstreamVersion(pkgVersion)
	}
	return w.GreaterThan(have)
}

// sortedUpstream lists the distinct upstream versions of some package
// versions, oldest first, for an error that says what a repo has.
func sortedUpstream(pkgVersions []string) []string {
	seen := map[string]bool{}
	var vs []string
	for _, pv := range pkgVersions {
		u := upstreamVersion(pv)
		if !seen[u] {
			seen[u] = true
			vs = append(vs, u)
		}
	}
	sort.Slice(vs, func(i, j int) bool {
		a, err1 := version.NewVersion(vs[i])
		b, err2 := version.NewVersion(vs[j])
		if err1 != nil || err2 != nil {
			return vs[i] < vs[j]
		}
		return a.LessThan(b)
	})
	return vs
}

// parseYumList reads `yum list --showduplicates` output into the versions
// it lists per package name ("docker-ce.x86_64  3:24.0.9-1.el9  repo").
// yum wraps long columns onto the next line, so the output is read as one
// stream of words: a name.arch word followed by a version word.
func parseYumList(out string, names []string) map[string][]string {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	found := map[string][]string{}
	words := strings.Fields(out)
	for i := 0; i+1 < len(words); i++ {
		dot := strings.LastIndex(words[i], ".")
		if dot <= 0 {
			continue
		}
		name := words[i][:dot]
		if want[name] && looksLikeEVR(words[i+1]) {
			found[name] = append(found[name], words[i+1])
			i++
		}
	}
	return found
}

// looksLikeEVR tells a version word from a repo name or heading.
func looksLikeEVR(w string) bool {
	return w != "" && (w[0] >= '0' && w[0] <= '9') && strings.Contains(w, "-")
}

// parseMadison reads `apt-cache madison` output ("docker-ce | 5:24.0.9-1~ubuntu.22.04~jammy | URL suite/stable amd64 Packages").
func parseMadison(out string) map[string][]string {
	found := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Split(line, "|")
		if len(f) < 3 {
			continue
		}
		name, v := strings.TrimSpace(f[0]), strings.TrimSpace(f[1])
		if name != "" && v != "" {
			found[name] = append(found[name], v)
		}
	}
	return found
}

// pickVersion finds, among the versions a repo has of a package, the one
// with the wanted upstream version: the newest build of it, which is the
// last one yum lists and the first one apt-cache madison lists.
func pickVersion(available []string, want string, newestFirst bool) (string, bool) {
	var best string
	for _, pv := range available {
		if sameVersion(pv, want) {
			best = pv
			if newestFirst {
				break
			}
		}
	}
	return best, best != ""
}
