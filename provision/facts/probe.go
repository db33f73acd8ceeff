package facts

import "github.com/kprep/kprep/provision/shell"

// Script is the probe snippet that prints the facts as key=value lines. It
// runs inside the engine's one probe script, so it must be POSIX sh, quick,
// and change nothing. /etc/os-release is read in a subshell so its variables
// cannot leak into other snippets.
var Script = `(
  . /etc/os-release 2>/dev/null
  echo "os_id=${ID:-}"
  echo "os_version=${VERSION_ID:-}"
  echo "os_name=${PRETTY_NAME:-}"
  echo "os_like=${ID_LIKE:-}"
  echo "os_codename=${VERSION_CODENAME:-${UBUNTU_CODENAME:-}}"
)
if [ -r /etc/redhat-release ] && read -r l < /etc/redhat-release; then echo "redhat_release=$l"; fi
u=$(uname -rm)
echo "arch=${u##* }"
echo "kernel=${u% *}"
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then echo cgroupfs=cgroup2fs
elif [ -d /sys/fs/cgroup ]; then echo cgroupfs=tmpfs; else echo cgroupfs=; fi
l=; [ -r /proc/1/comm ] && read -r l < /proc/1/comm; echo "init=$l"
pkgs=
for p in dnf yum apt-get; do
  if command -v "$p" >/dev/null 2>&1; then pkgs="$pkgs $p"; fi
done
echo "pkg=$pkgs"
l=; [ -r /proc/sys/kernel/hostname ] && read -r l < /proc/sys/kernel/hostname; echo "hostname=$l"
echo "pagesize=$(getconf PAGESIZE 2>/dev/null)"
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
if [ -n "$missing" ]; then
  re=
  for m in $missing; do re="${re:+$re|}$m"; done
  found=$(grep -ohE "/($re)\.ko" "/lib/modules/${u% *}/modules.builtin" "/lib/modules/${u% *}/modules.dep" 2>/dev/null)
  left=
  for m in $missing; do
    case "$found" in *"/$m.ko"*) continue ;; esac
    left="$left $m"
  done
  missing=$left
fi
echo "ipvs_missing=$missing"
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
