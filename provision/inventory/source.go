package inventory

import (
	"regexp"
	"strconv"
	"strings"
)

// source remembers, for a loaded file, where each field path stood and which
// values were written at all, so that defaults can tell "port: 0" from no
// port and errors can point at the line.
type source struct {
	pos map[string]pos
	set map[string]bool
	// failed lists the paths whose value had the wrong type; the semantic
	// checks stay quiet about them (and their parents and children) rather
	// than pile a second, confusing error on the first.
	failed []string
}

// isSet reports whether the file gave the path a non-null value.
func (s *source) isSet(path string) bool { return s != nil && s.set[path] }

// at returns where to report a problem with path: the value itself when the
// file has it, else the key of the nearest enclosing field that it has.
func (s *source) at(path string) pos {
	if s == nil {
		return pos{}
	}
	for p := path; ; p = parentPath(p) {
		if at, ok := s.pos[p]; ok {
			return at
		}
		if p == "" {
			return pos{}
		}
	}
}

// parentPath drops the last ".field" or "[index]" from a field path.
func parentPath(p string) string {
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndexByte(p, '['); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexByte(p, '.'); i >= 0 {
		return p[:i]
	}
	return ""
}

// related reports whether one path is the other or lies inside it.
func related(a, b string) bool {
	inside := func(child, parent string) bool {
		return parent == "" || strings.HasPrefix(child, parent+".") || strings.HasPrefix(child, parent+"[")
	}
	return a == b || inside(a, b) || inside(b, a)
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// fieldPath appends a mapping key to a path: hosts[0].address, but
// hostprep.sysctl["net.ipv4.ip_forward"] where a dot would mislead.
func fieldPath(parent, key string) string {
	if !plainKey.MatchString(key) {
		return parent + "[" + strconv.Quote(key) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string { return parent + "[" + strconv.Itoa(i) + "]" }
