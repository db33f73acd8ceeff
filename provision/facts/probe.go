package facts

// Script is the probe snippet that prints the facts as key=value lines. It
// runs inside the engine's one probe script, so it must be POSIX sh, quick,
// and change nothing. /etc/os-release is read in a subshell so its variables
// cannot leak into other snippets.
const Script = `(
  . /etc/os-release 2>/dev/null
  echo "os_id=${ID:-}"
  echo "os_version=${VERSION_ID:-}"
  echo "os_name=${PRETTY_NAME:-}"
  echo "os_like=${ID_LIKE:-}"
  echo "os_codename=${VERSION_CODENAME:-${UBUNTU_CODENAME:-}}"
)
if [ -r /etc/redhat-release ]; then echo "redhat_release=$(head -n1 /etc/redhat-release)"; fi
echo "arch=$(uname -m)"
echo "kernel=$(uname -r)"
echo "cgroupfs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null)"
echo "init=$(cat /proc/1/comm 2>/dev/null)"
pkgs=
for p in dnf yum apt-get; do
  if command -v "$p" >/dev/null 2>&1; then pkgs="$pkgs $p"; fi
done
echo "pkg=$pkgs"
echo "hostname=$(cat /proc/sys/kernel/hostname 2>/dev/null)"
echo "pagesize=$(getconf PAGESIZE 2>/dev/null)"
echo "cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null)"
echo "memkb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null)"
echo "user=${SUDO_USER:-$(id -un)}"
echo "sudo=${SUDO_USER:+yes}"
# What the kube phase's preflight needs. A kernel module counts as there when
# loaded or built in (/sys/module), listed in modules.builtin, or loadable
# (modprobe -n only looks: it loads nothing).
missing=
for m in ip_vs ip_vs_rr ip_vs_wrr ip_vs_sh; do
  if [ -d "/sys/module/$m" ] || grep -qs "/$m.ko" "/lib/modules/$(uname -r)/modules.builtin" ||
    modprobe -n -q "$m" 2>/dev/null; then :; else missing="$missing $m"; fi
done
echo "ipvs_missing=$missing"
for c in conntrack socat; do
  if command -v "$c" >/dev/null 2>&1; then echo "$c=yes"; else echo "$c=no"; fi
done
echo "swaps=$(awk 'NR > 1' /proc/swaps 2>/dev/null | wc -l)"
# The installed runtimes' versions; cri-dockerd prints its to stderr.
for c in containerd dockerd cri-dockerd; do
  v=
  if command -v "$c" >/dev/null 2>&1; then v=$("$c" --version 2>&1 | head -n1); fi
  echo "version_$c=$v"
done
`
