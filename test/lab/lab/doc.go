// Package lab builds and runs kprep's test hosts on this machine: real
// systemd hosts booted with systemd-nspawn, each with its own network
// address on a bridge, its own overlay root over one cached Debian root file
// system, and the personality (release files, repos, fstab, SELinux config)
// of CentOS 7, Rocky 9, openEuler 22.03 or Ubuntu 22.04. Inside a host sshd,
// sudo, systemd, firewalld, dnf/rpm, dockerd and the kubelet are real; only
// what the shared kernel makes machine-wide (the SELinux mode, swap areas)
// is emulated per host, in plain sight (see test/lab/README.md).
//
// Up builds (or takes from the cache) the root file systems and the package
// mirror, boots the hosts and writes an inventory for kprep; Open finds a
// running lab from its state folder; Down removes everything Up made. All of
// it needs root.
package lab
