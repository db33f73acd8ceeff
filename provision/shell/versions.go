package shell

import (
	"fmt"
	"strings"
)

// VersionRecord is where kprep remembers what `PROGRAM --version` printed,
// one line per program: its path, the file's identity (device, inode, size,
// mtime, as stat -L prints them) and the version line. A line counts only
// while the file is that very file: an upgrade writes a new inode.
const VersionRecord = "/var/lib/kprep/versions"

// RecordingVar is the shell variable that lets a probe update
// VersionRecord: apply sets it to 1 in the session that holds the host's
// run lock. A plan never writes.
const RecordingVar = "kprep_recording"

// BinaryVersions returns a snippet that prints "PREFIX<program>=<first line
// of `program --version`>" for each program, empty when it is not in PATH.
// A program given by its absolute path is that file (and printed by its
// base name).
//
// containerd, dockerd and cri-dockerd are Go programs: each --version is
// a fresh process of 30-40 ms of host CPU, more than the rest of a
// converged host's facts together. The snippet asks them only when the
// record does not vouch for the file in PATH; one stat covers them all.
// It leaves the last program's line in $kprep_ver for the snippet after.
func BinaryVersions(prefix string, programs ...string) string {
	return binaryVersions(VersionRecord, prefix, programs...)
}

func binaryVersions(record, prefix string, programs ...string) string {
	return fmt.Sprintf(`kprep_nl='
'
kprep_ifs=$IFS
set -f
set --
for kprep_b in %[1]s; do
  case $kprep_b in /*)
    if [ -f "$kprep_b" ] && [ -x "$kprep_b" ]; then set -- "$@" "$kprep_b"; fi
    continue ;;
  esac
  IFS=:
  for kprep_d in $PATH; do
    if [ -f "$kprep_d/$kprep_b" ] && [ -x "$kprep_d/$kprep_b" ]; then set -- "$@" "$kprep_d/$kprep_b"; break; fi
  done
  IFS=$kprep_ifs
done
kprep_stat=
[ $# -eq 0 ] || kprep_stat=$(stat -Lc '%%n %%d:%%i:%%s:%%Y' "$@" 2>/dev/null)
kprep_new=
kprep_newpaths=' '
for kprep_b in %[1]s; do
  kprep_key=
  IFS=$kprep_nl
  for kprep_l in $kprep_stat; do
    case $kprep_l in "$kprep_b "*|*/"$kprep_b "*) kprep_key=$kprep_l ;; esac
  done
  IFS=$kprep_ifs
  kprep_ver=
  if [ -n "$kprep_key" ]; then
    kprep_found=
    if [ -r %[3]s ]; then
      while IFS= read -r kprep_l; do
        case $kprep_l in "$kprep_key "*) kprep_ver=${kprep_l#"$kprep_key "}; kprep_found=1 ;; esac
      done < %[3]s
    fi
    if [ -z "$kprep_found" ]; then
      kprep_ver=$("${kprep_key%% *}" --version 2>&1)
      kprep_ver=${kprep_ver%%%%"$kprep_nl"*}
      kprep_new="$kprep_new$kprep_key $kprep_ver$kprep_nl"
      kprep_newpaths="$kprep_newpaths${kprep_key%% *} "
    fi
  fi
  printf '%%s\n' "%[2]s${kprep_b##*/}=$kprep_ver"
done
if [ -n "$kprep_new" ] && [ "${%[4]s:-}" = 1 ]; then
  {
    if [ -r %[3]s ]; then
      while IFS= read -r kprep_l; do
        case $kprep_newpaths in *" ${kprep_l%%%% *} "*) ;; *) printf '%%s\n' "$kprep_l" ;; esac
      done < %[3]s
    fi
    printf '%%s' "$kprep_new"
  } > %[3]s.tmp && mv -f %[3]s.tmp %[3]s
fi
set +f`, strings.Join(programs, " "), prefix, Quote(record), RecordingVar)
}
