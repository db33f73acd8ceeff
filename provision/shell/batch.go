package shell

import (
	"encoding/base64"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Batched reads. On a converged host a probe's cost is the programs it
// starts, about a millisecond each and ten for systemctl or rpm; the
// steps' snippets used to start one base64 per file, one systemctl per
// unit and one rpm per step. File, Show and Packages below emit a call to
// a shell function (kprep_file, kprep_show, kprep_pkgq) with a fallback
// that asks on its own. The engine's probe script (provision/probe.go)
// finds those calls with PlanBatch, opens with the plan's Prelude, which
// defines the functions over answers gathered once for all its snippets
// (one systemctl show for every unit, one package query for every
// package, from PackageRecord while it holds), and runs FilesSnippet as
// its first section (one stat, cat and base64 for every file), whose
// output resolves the snippets' file references. A snippet run alone (in
// a test, in the bench) finds no such function and takes its fallback,
// with the same output.

// batchArg is what a batched file path, label, unit or package name may
// hold: nothing a shell would split, expand or quote.
var batchArg = regexp.MustCompile(`^[A-Za-z0-9._/@:+-]+$`)

// Scanned back out of the snippets by PlanBatch; the emitters below write
// exactly these forms.
var (
	fileCall = regexp.MustCompile(`kprep_file ([A-Za-z0-9._/@:+-]+) (/[A-Za-z0-9._/@:+-]+) 2>/dev/null \|\|`)
	showCall = regexp.MustCompile(`kprep_show ([A-Za-z0-9._/@:+-]+)((?: [A-Za-z]+)+) 2>/dev/null \|\|`)
	pkgCall  = regexp.MustCompile(`kprep_pkgq((?: [A-Za-z0-9._/@:+-]+)+) 2>/dev/null \|\|`)
)

// batchedFile reports whether path can be read in the batch: an absolute
// path of plain characters outside the kernel's virtual file systems,
// whose sizes stat does not tell.
func batchedFile(label, path string) bool {
	if !batchArg.MatchString(label) || !batchArg.MatchString(path) || !strings.HasPrefix(path, "/") {
		return false
	}
	for _, virtual := range []string{"/proc/", "/sys/", "/dev/"} {
		if strings.HasPrefix(path, virtual) {
			return false
		}
	}
	return true
}

// Show returns a snippet that sets kprep_PROP to each property's value of
// a systemd unit, empty when systemctl does not say.
func Show(unit string, props ...string) string {
	direct := showDirect(unit, props...)
	if !batchArg.MatchString(unit) {
		return direct
	}
	return fmt.Sprintf("kprep_show %s %s 2>/dev/null || { %s\n}", unit, strings.Join(props, " "), direct)
}

func showDirect(unit string, props ...string) string {
	var b strings.Builder
	for _, p := range props {
		fmt.Fprintf(&b, "kprep_%s=; ", p)
	}
	b.WriteString("while IFS= read -r kprep_l; do case $kprep_l in ")
	for _, p := range props {
		fmt.Fprintf(&b, "%[1]s=*) kprep_%[1]s=${kprep_l#*=} ;; ", p)
	}
	b.WriteString("esac; done <<KPREP_SHOW\n$(systemctl show")
	for _, p := range props {
		b.WriteString(" -p " + p)
	}
	b.WriteString(" " + Quote(unit) + " 2>/dev/null)\nKPREP_SHOW")
	return b.String()
}

// Packages returns a snippet that prints one line per installed package of
// names, from rpm ("rpm NAME EPOCH:VERSION-RELEASE") and dpkg ("deb NAME
// VERSION STATUS"). Both databases are asked: a host may carry the other
// tool too, and the reader keeps its family's lines.
func Packages(names ...string) string {
	direct := packagesDirect(names)
	for _, n := range names {
		if !batchArg.MatchString(n) {
			return direct
		}
	}
	return fmt.Sprintf("kprep_pkgq %s 2>/dev/null || { %s\n}", strings.Join(names, " "), direct)
}

func packagesDirect(names []string) string {
	list := Join(names...)
	return `command -v rpm >/dev/null && rpm -q --qf 'rpm %{NAME} %{EPOCH}:%{VERSION}-%{RELEASE}\n' ` + list + ` 2>/dev/null | grep '^rpm '
command -v dpkg-query >/dev/null && dpkg-query -W -f='deb ${Package} ${Version} ${db:Status-Abbrev}\n' ` + list + ` 2>/dev/null | grep '^deb '
true`
}

// BatchPlan is what a probe script's snippets ask that Batch gathers once.
type BatchPlan struct {
	Files    []string // paths, in first-asked order
	Units    []string
	Props    []string
	Packages []string
}

// Empty reports whether there is nothing to batch.
func (p BatchPlan) Empty() bool {
	return len(p.Files) == 0 && len(p.Units) == 0 && len(p.Packages) == 0
}

// PlanBatch finds the batched calls in snippets.
func PlanBatch(snippets ...string) BatchPlan {
	var p BatchPlan
	add := func(list *[]string, v string) {
		if !slices.Contains(*list, v) {
			*list = append(*list, v)
		}
	}
	for _, s := range snippets {
		for _, m := range fileCall.FindAllStringSubmatch(s, -1) {
			add(&p.Files, m[2])
		}
		for _, m := range showCall.FindAllStringSubmatch(s, -1) {
			add(&p.Units, m[1])
			for _, prop := range strings.Fields(m[2]) {
				add(&p.Props, prop)
			}
		}
		for _, m := range pkgCall.FindAllStringSubmatch(s, -1) {
			for _, n := range strings.Fields(m[1]) {
				add(&p.Packages, n)
			}
		}
	}
	return p
}

// Prelude returns the script's opening: it asks systemd and the package
// databases once, keeping the answers in shell variables, and defines
// kprep_show, kprep_pkgq and kprep_file over them. It prints nothing:
// the files are read by FilesSnippet, whose output Resolve matches with
// the snippets' references.
func (p BatchPlan) Prelude() string {
	var b strings.Builder
	if len(p.Units) > 0 {
		// One block per unit, in the order asked, an empty line between.
		b.WriteString("kprep_ui=0\nwhile IFS= read -r kprep_l; do case $kprep_l in\n  '') kprep_ui=$((kprep_ui+1)) ;;\n")
		fmt.Fprintf(&b, "  %s) eval \"kprep_u${kprep_ui}_${kprep_l%%%%=*}=\\${kprep_l#*=}\" ;;\nesac; done <<KPREP_UNITS\n$(systemctl show", strings.Join(props(p.Props, "=*"), "|"))
		for _, prop := range p.Props {
			b.WriteString(" -p " + prop)
		}
		b.WriteString(" -- " + strings.Join(p.Units, " ") + " 2>/dev/null)\nKPREP_UNITS\n")
		b.WriteString("kprep_show() {\n  case $1 in\n")
		for i, u := range p.Units {
			fmt.Fprintf(&b, "    %s) kprep_n=%d ;;\n", u, i)
		}
		b.WriteString("    *) return 1 ;;\n  esac\n  shift\n  for kprep_p; do\n    case $kprep_p in " + strings.Join(p.Props, "|") + ") ;; *) return 1 ;; esac\n  done\n")
		b.WriteString("  for kprep_p; do eval \"kprep_$kprep_p=\\${kprep_u${kprep_n}_$kprep_p-}\"; done\n}\n")
	}
	if len(p.Packages) > 0 {
		b.WriteString(packagesFromRecord(p.Packages))
		b.WriteString("kprep_pkgq() {\n  for kprep_p; do case \" " + strings.Join(p.Packages, " ") + " \" in *\" $kprep_p \"*) ;; *) return 1 ;; esac; done\n")
		b.WriteString("  kprep_want=\" $* \"\n  kprep_ifs=$IFS; IFS='\n'; set -f\n  for kprep_l in $kprep_pkgs; do\n    IFS=' '; set -- $kprep_l; IFS='\n'\n")
		b.WriteString("    case $kprep_want in *\" $2 \"*) printf '%s\\n' \"$kprep_l\" ;; esac\n  done\n  IFS=$kprep_ifs; set +f\n}\n")
	}
	if len(p.Files) > 0 {
		// A reference is resolved against FilesSnippet's output, read
		// before any snippet ran; a path that is not a regular file is
		// left to the fallback.
		b.WriteString("kprep_file() {\n  case $2 in\n    " + strings.Join(p.Files, "|") + ") ;;\n    *) return 1 ;;\n  esac\n")
		b.WriteString("  if [ -f \"$2\" ]; then echo \"fileref $1 $2\"; elif [ -e \"$2\" ]; then return 1; else echo \"file $1 -\"; fi\n}\n")
	}
	return b.String()
}

// PackageRecord is where kprep remembers the answer of the probe's package
// query: a heading (the query's form and the package names, then the
// package databases' identity as stat -L prints it: inode, size and mtime
// to the nanosecond; not ctime, which SQLite's write-ahead log changes on
// every read), a line "--", then the answer. rpm takes about ten
// milliseconds of host CPU for any query; the heading costs one stat. The
// identity is taken before the query, so a transaction during or after it
// makes the record stale, never wrong.
const PackageRecord = "/var/lib/kprep/packages"

// packageDatabases are the files whose change means rpm or dpkg may answer
// otherwise: rpm's Berkeley DB, SQLite (with its write-ahead log) and NDB
// files, dpkg's status file and its journal folder.
const packageDatabases = "/var/lib/rpm/Packages /var/lib/rpm/rpmdb.sqlite /var/lib/rpm/rpmdb.sqlite-wal /var/lib/rpm/Packages.db /var/lib/dpkg/status /var/lib/dpkg/updates"

// packagesFromRecord sets kprep_pkgs to the package query's answer for
// names: from PackageRecord while the databases are as it says, else by
// asking rpm and dpkg, and then (in an apply's probe) writing the record.
func packagesFromRecord(names []string) string {
	return fmt.Sprintf(`kprep_pdb=$(stat -L -c '%%n %%i %%s %%y' %[1]s 2>/dev/null)
kprep_phead="kprep-packages 1 %[2]s
$kprep_pdb"
kprep_pgot=; kprep_pkgs=; kprep_pin=head
if [ -n "$kprep_pdb" ] && [ -r %[3]s ]; then
  while IFS= read -r kprep_l; do
    if [ "$kprep_pin" = head ]; then
      if [ "$kprep_l" = -- ]; then kprep_pin=body; else kprep_pgot="${kprep_pgot:+$kprep_pgot
}$kprep_l"; fi
    else kprep_pkgs="${kprep_pkgs:+$kprep_pkgs
}$kprep_l"; fi
  done <%[3]s
fi
if [ "$kprep_pin" != body ] || [ "$kprep_pgot" != "$kprep_phead" ]; then
  kprep_pkgs=$( { %[4]s; } 2>/dev/null)
  if [ -n "$kprep_pdb" ] && [ "${%[5]s:-}" = 1 ]; then
    printf '%%s
--
%%s
' "$kprep_phead" "$kprep_pkgs" >%[3]s.tmp && mv -f %[3]s.tmp %[3]s
  fi
fi
`, packageDatabases, strings.Join(names, " "), PackageRecord, packagesDirect(names), RecordingVar)
}

func props(names []string, suffix string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = n + suffix
	}
	return out
}

// FilesSnippet reads every batched file that is a regular file, in one
// stat, one cat and one base64: "size N PATH" lines, then "blob B64" of
// them all in that order. A file that changes size between stat and cat
// makes the lengths disagree; the read is then taken again.
func (p BatchPlan) FilesSnippet() string {
	if len(p.Files) == 0 {
		return ""
	}
	return `set --
for kprep_f in ` + strings.Join(p.Files, " ") + `; do [ -f "$kprep_f" ] && set -- "$@" "$kprep_f"; done
[ $# -gt 0 ] || exit 0
kprep_try=0
while :; do
  kprep_s=$(stat -L -c '%s %n' -- "$@" 2>/dev/null)
  kprep_b=$(cat -- "$@" 2>/dev/null | base64 -w0)
  kprep_t=0
  kprep_ifs=$IFS; IFS='
'
  for kprep_l in $kprep_s; do kprep_t=$((kprep_t + ${kprep_l%% *})); done
  IFS=$kprep_ifs
  [ ${#kprep_b} -eq $(( (kprep_t + 2) / 3 * 4 )) ] && break
  kprep_try=$((kprep_try + 1))
  if [ $kprep_try -ge 3 ]; then echo "files kept changing while they were read: $*" >&2; exit 1; fi
done
IFS='
'
for kprep_l in $kprep_s; do echo "size $kprep_l"; done
echo "blob $kprep_b"`
}

// BatchedFiles is FilesSnippet's output read back: each file's content
// by path.
type BatchedFiles map[string][]byte

// ParseBatchedFiles reads FilesSnippet's output.
func ParseBatchedFiles(text string) (BatchedFiles, error) {
	type entry struct {
		path string
		size int
	}
	var entries []entry
	var blob []byte
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, "size "):
			n, path, ok := strings.Cut(strings.TrimPrefix(line, "size "), " ")
			size, err := strconv.Atoi(n)
			if !ok || err != nil || size < 0 {
				return nil, fmt.Errorf("batched files: bad line %q", line)
			}
			entries = append(entries, entry{path, size})
		case strings.HasPrefix(line, "blob "):
			raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(line, "blob "))
			if err != nil {
				return nil, fmt.Errorf("batched files: %v", err)
			}
			blob = raw
		default:
			return nil, fmt.Errorf("batched files: unexpected line %q", line)
		}
	}
	out := BatchedFiles{}
	off := 0
	for _, e := range entries {
		if off+e.size > len(blob) {
			return nil, fmt.Errorf("batched files: %s runs past the %d bytes read", e.path, len(blob))
		}
		out[e.path] = blob[off : off+e.size]
		off += e.size
	}
	if off != len(blob) {
		return nil, fmt.Errorf("batched files: %d bytes read, the sizes add up to %d", len(blob), off)
	}
	return out, nil
}

// Resolve replaces a section's "fileref LABEL PATH" lines with the file
// records File prints when it reads on its own: "file LABEL <base64>", or
// "file LABEL -" for a file that was not there when the batch was read.
func (f BatchedFiles) Resolve(text string) string {
	if !strings.Contains(text, "fileref ") {
		return text
	}
	lines := strings.SplitAfter(text, "\n")
	for i, line := range lines {
		rest, ok := strings.CutPrefix(line, "fileref ")
		if !ok {
			continue
		}
		label, path, _ := strings.Cut(strings.TrimRight(rest, "\n"), " ")
		if content, ok := f[path]; ok {
			lines[i] = "file " + label + " " + base64.StdEncoding.EncodeToString(content) + "\n"
		} else {
			lines[i] = "file " + label + " -\n"
		}
	}
	return strings.Join(lines, "")
}
