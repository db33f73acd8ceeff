package lab

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/kprep/kprep/test/lab/instance"
)

const (
	// DefaultCacheDir is the cache folder (KPREP_LAB_CACHE overrides it),
	// shared by every lab instance.
	DefaultCacheDir = instance.CacheDir
	// MaxHosts bounds --hosts (with the VMs): the bridge's /24 holds
	// lab1 at .11 to lab200 at .210, and "kprep-h9-lab200" is Linux's
	// longest interface name. Memory (about 50 MiB resident per converged
	// host) and CPU, not the lab, limit a 2-core machine.
	MaxHosts = 200
)

// StateDirFromEnv returns KPREP_LAB_STATE, or the state folder of the lab
// instance KPREP_LAB_ID names (/var/lib/kprep-lab for 0, -N for N). It
// returns "" when KPREP_LAB_ID is not a valid ID: Up, Open and Down take ""
// for the instance's folder and report the bad ID.
func StateDirFromEnv() string {
	_, dir, err := fromEnv("")
	if err != nil {
		return ""
	}
	return dir
}

// fromEnv returns the instance KPREP_LAB_ID names and stateDir, or, when
// stateDir is "", KPREP_LAB_STATE or that instance's state folder.
func fromEnv(stateDir string) (instance.ID, string, error) {
	id, err := instance.FromEnv()
	if err != nil {
		return 0, "", err
	}
	if stateDir == "" {
		stateDir = envOr("KPREP_LAB_STATE", id.StateDir())
	}
	return id, stateDir, nil
}

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
	// Instance is the lab instance to bring up (its bridge, subnet, state
	// folder...); nil means KPREP_LAB_ID's, 0 when it is unset.
	Instance *instance.ID
	// Hosts is how many hosts to boot (lab1..labN); 0 means one per OS.
	Hosts int
	// OS lists personalities (centos7, rocky9, openeuler22, ubuntu22) or
	// VM host kinds (openeuler22-arm64), cycled over the hosts; empty means
	// DefaultOS.
	OS []string
	// VMs lists VM host kinds (openeuler22-arm64) booted after the Hosts
	// hosts, one each: `up --vm` adds them beside the x86 hosts.
	VMs []string
	// StateDir holds the running lab: host roots, keys, inventory, logs;
	// empty means the instance's folder (or KPREP_LAB_STATE when Instance
	// is nil too).
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
	if o.Instance == nil {
		id, stateDir, err := fromEnv(o.StateDir)
		if err != nil {
			return o, err
		}
		o.Instance, o.StateDir = &id, stateDir
	}
	if o.StateDir == "" {
		// An instance given by the caller gets its own folder, never
		// KPREP_LAB_STATE, which names the environment's one lab.
		o.StateDir = o.Instance.StateDir()
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
	for _, name := range o.VMs {
		if lookupVM(name) == nil {
			return o, fmt.Errorf("--vm %q: the lab's VM hosts are %s", name, strings.Join(VMNames(), ", "))
		}
	}
	if o.Hosts+len(o.VMs) > MaxHosts {
		return o, fmt.Errorf("--hosts %d and %d VMs: the lab runs 1 to %d hosts", o.Hosts, len(o.VMs), MaxHosts)
	}
	for _, name := range o.OS {
		if err := checkOS(name); err != nil {
			return o, err
		}
	}
	if o.DebianMirror == "" {
		o.DebianMirror = envOr("KPREP_LAB_DEBIAN_MIRROR", "http://deb.debian.org/debian")
	}
	return o, nil
}
