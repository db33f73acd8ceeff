package facts

import "github.com/kprep/kprep/provision/shell"

// Record is where the facts snippet keeps what it asked programs for
// and what cannot change unseen: "boot BOOT_ID ARCH PAGESIZE KERNEL" (fixed
// while the host is up) and "ipvs KERNEL MODULES" (the IPVS modules found
// in that kernel's modules.builtin and modules.dep; trusted only while the
// record is newer than both, so a depmod after it, even within the same
// second, sends the snippet back to the files). A converged host's facts
// then run no program at all but stat: uname, getconf and the grep were
// most of their cost. Written, like shell.VersionRecord, only by a probe
// that holds the host's run lock (shell.RecordingVar), and only when a
// line is new.
const Record = "/var/lib/kprep/facts"

// Script is the probe snippet that prints the facts as key=value lines. It
// runs inside the engine's one probe script, so it must be POSIX sh, quick,
// and change nothing but kprep's own records. /etc/os-release is read in a
// subshell so its variables cannot leak into other snippets.
var Script = `(
  . /etc/os-release 2>/dev/null
  echo "os_id=${ID:-}"
  echo "os_version=${VERSION_ID:-}"
  echo "os_name=${PRETTY_NAME:-}"
  echo "os_like=${ID_LIKE:-}"
  echo "os_codename=${VERSION_CODENAME:-${UBUNTU_CODENAME:-}}"
)
if [ -r /etc/redhat-release ] && read -r l < /etc/redhat-release; then echo "redhat_release=$l"; fi
kprep_boot=; [ -r /proc/sys/kernel/random/boot_id ] && read -r kprep_boot < /proc/sys/kernel/random/boot_id
kprep_fboot=; kprep_fipvs=; kprep_fnew=
if [ -n "$kprep_boot" ] && [ -r ` + Record + ` ]; then
  while read -r kprep_k kprep_a kprep_b kprep_c kprep_d; do
    case $kprep_k in
    boot) [ "$kprep_a" = "$kprep_boot" ] && [ -n "$kprep_d" ] && kprep_fboot="$kprep_b $kprep_c $kprep_d" ;;
    ipvs) kprep_fipvs="$kprep_a $kprep_b" ;;
    esac
  done < ` + Record + `
fi
if [ -n "$kprep_fboot" ]; then
  set -- $kprep_fboot; kprep_arch=$1; kprep_pagesize=$2; kprep_kernel=$3
else
  u=$(uname -rm); kprep_arch=${u##* }; kprep_kernel=${u% *}
  kprep_pagesize=$(getconf PAGESIZE 2>/dev/null)
  kprep_fnew=1
fi
echo "arch=$kprep_arch"
echo "kernel=$kprep_kernel"
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then echo cgroupfs=cgroup2fs
elif [ -d /sys/fs/cgroup ]; then echo cgroupfs=tmpfs; else echo cgroupfs=; fi
l=; [ -r /proc/1/comm ] && read -r l < /proc/1/comm; echo "init=$l"
pkgs=
for p in dnf yum apt-get; do
  if command -v "$p" >/dev/null 2>&1; then pkgs="$pkgs $p"; fi
done
echo "pkg=$pkgs"
l=; [ -r /proc/sys/kernel/hostname ] && read -r l < /proc/sys/kernel/hostname; echo "hostname=$l"
echo "pagesize=$kprep_pagesize"
l=; [ -r /sys/devices/system/cpu/online ] && read -r l < /sys/devices/system/cpu/online; echo "cpus_online=$l"
l=; [ -r /proc/meminfo ] && read -r l < /proc/meminfo; set -- $l; echo "memkb=${2:-}"
echo "user=${SUDO_USER:-${USER:-$(id -un)}}"
echo "sudo=${SUDO_USER:+yes}"
# What the kube phase's preflight needs. A kernel module counts as there when
# loaded or built in (/sys/module), or listed in modules.builtin or, as
# loadable, in modules.dep (what modprobe reads to find it). Most hosts
# answer from /sys/module alone; the others with one grep.
missing=
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh; do
  [ -d "/sys/module/$m" ] || missing="$missing $m"
done
kprep_ipvs=
if [ -n "$missing" ]; then
  kprep_md=/lib/modules/$kprep_kernel
  if [ "${kprep_fipvs%% *}" = "$kprep_kernel" ] && { [ ! -e "$kprep_md/modules.dep" ] || [ ` + Record + ` -nt "$kprep_md/modules.dep" ]; } &&
    { [ ! -e "$kprep_md/modules.builtin" ] || [ ` + Record + ` -nt "$kprep_md/modules.builtin" ]; }; then
    kprep_ipvs=${kprep_fipvs#* }
  else
    found=$(grep -ohE "/(ip_vs|ip_vs_rr|ip_vs_wrr|ip_vs_sh)\.ko" "$kprep_md/modules.builtin" "$kprep_md/modules.dep" 2>/dev/null)
    kprep_ipvs=,
    for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh; do
      case "$found" in *"/$m.ko"*) kprep_ipvs="$kprep_ipvs$m," ;; esac
    done
    kprep_fnew=1
  fi
  left=
  for m in $missing; do
    case "$kprep_ipvs" in *",$m,"*) continue ;; esac
    left="$left $m"
  done
  missing=$left
fi
echo "ipvs_missing=$missing"
# Only lines asked or checked by this probe are written: an old ipvs line
# must not look new because the boot line was rewritten.
if [ -n "$kprep_fnew" ] && [ -n "$kprep_boot" ] && [ "${` + shell.RecordingVar + `:-}" = 1 ]; then
  {
    echo "boot $kprep_boot $kprep_arch ${kprep_pagesize:-0} $kprep_kernel"
    [ -z "$kprep_ipvs" ] || echo "ipvs $kprep_kernel $kprep_ipvs"
  } > ` + Record + `.tmp && mv -f ` + Record + `.tmp ` + Record + `
fi
for c in conntrack socat; do
  if command -v "$c" >/dev/null 2>&1; then echo "$c=yes"; else echo "$c=no"; fi
done
n=0
if [ -r /proc/swaps ]; then while read -r l; do n=$((n + 1)); done < /proc/swaps; fi
echo "swaps=$((n > 0 ? n - 1 : 0))"
# The installed runtimes' versions; cri-dockerd prints its to stderr.
` + versionsSnippet

// versionsSnippet prints version_containerd, version_dockerd and
// version_cri-dockerd, asking each program only when kprep's record does
// not vouch for the installed file.
var versionsSnippet = shell.BinaryVersions("version_", "containerd", "dockerd", "cri-dockerd")

// RecordVersions is the snippet an apply runs, holding the host's lock,
// before it lets go of a host it changed: it asks the runtimes installed
// by the run for their versions once and records them, so that the next
// run's facts find them vouched for instead of paying 30-40 ms of host CPU
// per program (the facts are probed once a run, before the installs).
var RecordVersions = versionsSnippet
