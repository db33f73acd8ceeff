package lab

import (
	"fmt"
	"io"
	"os"
)

// Default folders; KPREP_LAB_STATE and KPREP_LAB_CACHE override them.
const (
	DefaultStateDir = "/var/lib/kprep-lab"
	DefaultCacheDir = "/var/cache/kprep-lab"
	// MaxHosts bounds --hosts: the bridge's /24 and the machine's inotify
	// and memory budget both run out long before 200.
	MaxHosts = 50
)

// StateDirFromEnv returns KPREP_LAB_STATE or the default state folder.
func StateDirFromEnv() string { return envOr("KPREP_LAB_STATE", DefaultStateDir) }

// CacheDirFromEnv returns KPREP_LAB_CACHE or the default cache folder.
func CacheDirFromEnv() string { return envOr("KPREP_LAB_CACHE", DefaultCacheDir) }

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Options say what lab Up builds.
type Options struct {
	// Hosts is how many hosts to boot (lab1..labN); 0 means one per OS.
	Hosts int
	// OS lists personalities (centos7, rocky9, openeuler22, ubuntu22),
	// cycled over the hosts; empty means DefaultOS.
	OS []string
	// StateDir holds the running lab: host roots, keys, inventory, logs.
	StateDir string
	// CacheDir keeps what is slow to make (root file systems, the mirror)
	// between runs, keyed by recipe.
	CacheDir string
	// Log receives progress lines; nil discards them.
	Log io.Writer
	// NoMirror skips building and serving the package mirror and registry,
	// for work on the hosts alone; kprep's runtime and kube phases need it.
	NoMirror bool
	// DebianMirror is where debootstrap and apt fetch the base root file
	// system; empty means KPREP_LAB_DEBIAN_MIRROR or deb.debian.org.
	DebianMirror string
}

// withDefaults fills empty fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.StateDir == "" {
		o.StateDir = StateDirFromEnv()
	}
	if o.CacheDir == "" {
		o.CacheDir = CacheDirFromEnv()
	}
	if len(o.OS) == 0 {
		o.OS = DefaultOS
	}
	if o.Hosts == 0 {
		o.Hosts = len(o.OS)
	}
	if o.Hosts < 1 || o.Hosts > MaxHosts {
		return o, fmt.Errorf("--hosts %d: the lab runs 1 to %d hosts", o.Hosts, MaxHosts)
	}
	for _, name := range o.OS {
		if _, err := lookupPersonality(name); err != nil {
			return o, err
		}
	}
	if o.DebianMirror == "" {
		o.DebianMirror = envOr("KPREP_LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
	}
	return o, nil
}
