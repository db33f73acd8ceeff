package inventory

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// maxErrors bounds how many problems one file reports: past that, more lines
// are noise, and a hostile file (aliases fanning out) cannot grow the list.
const maxErrors = 50

// Error is one problem in an inventory, placed at the value it is about.
type Error struct {
	File   string // the inventory file, as given to Load; "" for a Cluster built in code
	Line   int    // 1-based; 0 when the place is not known
	Column int    // 1-based; 0 when the place is not known
	Field  string // the field path, e.g. hosts[1].address; "" for the file as a whole
	Msg    string // what is wrong and, where we can tell, what to write instead
}

// Error formats the problem as file:line:column: field: message, leaving out
// the parts that are not known.
func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
	}
	if e.Line > 0 {
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteByte(':')
			b.WriteString(strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one inventory, in file order. Load and
// Validate return it as their error; range over it, or use errors.As to get
// it back from a wrapped error.
type ErrorList []*Error

// Error prints one problem per line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find a single *Error in the list.
func (l ErrorList) Unwrap() []error {
	errs := make([]error, len(l))
	for i, e := range l {
		errs[i] = e
	}
	return errs
}

// pos is a place in the file.
type pos struct{ line, column int }

// errorSink collects problems up to maxErrors.
type errorSink struct {
	file string
	list ErrorList
	// full is set once maxErrors is reached; decoders stop walking then.
	full bool
}

func (s *errorSink) add(at pos, field, format string, args ...any) {
	if s.full {
		return
	}
	if len(s.list) == maxErrors {
		s.full = true
		s.list = append(s.list, &Error{File: s.file, Line: at.line, Column: at.column,
			Msg: fmt.Sprintf("too many errors; stopped after %d", maxErrors)})
		return
	}
	s.list = append(s.list, &Error{File: s.file, Line: at.line, Column: at.column, Field: field,
		Msg: fmt.Sprintf(format, args...)})
}

// sortErrors puts positioned errors in file order; the others keep the order
// they were found in and come last.
func sortErrors(l ErrorList) {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if (a.Line == 0) != (b.Line == 0) {
			return b.Line == 0
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// shortList joins items for a message, naming at most limit of them: a list
// of five thousand hosts helps no one.
func shortList(items []string, limit int) string {
	if len(items) <= limit {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(items[:limit], ", "), len(items)-limit)
}

// suggest returns the candidate closest to got when it is close enough to be
// a likely misspelling, else "".
func suggest(got string, candidates []string) string {
	best, bestDist := "", -1
	lg := strings.ToLower(got)
	for _, c := range candidates {
		lc := strings.ToLower(c)
		d := editDistance(lg, lc)
		limit := max(1, len(c)/3)
		if d > limit && !(len(lg) >= 3 && strings.HasPrefix(lc, lg)) {
			continue
		}
		if bestDist < 0 || d < bestDist {
			best, bestDist = c, d
		}
	}
	return best
}

// didYouMean formats suggest's answer as a message tail.
func didYouMean(got string, candidates []string) string {
	if s := suggest(got, candidates); s != "" {
		return fmt.Sprintf("; did you mean %q?", s)
	}
	return ""
}

// editDistance is the optimal-string-alignment distance between a and b, in
// bytes: insertions, deletions, substitutions and swaps of two neighbours
// (nmae -> name) each count one.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		// Field names are short; a long word is no misspelling of one.
		return max(len(a), len(b))
	}
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
