package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/kprep/kprep/test/lab/instance"
)

// sysctlLimit is a machine sysctl (its /proc/sys file) and the lowest
// value the lab needs.
type sysctlLimit struct {
	path string
	min  int
}

// sysctlRecord is the machine-wide record of the raised limits, shared by
// all instances (instance.SysctlRecord, under instance.SysctlLock): the
// values that were there before the first lab raised them, and the labs
// that hold them raised. The last holder's Down restores them.
type sysctlRecord struct {
	Changes []sysctlChange `json:"changes"`
	Holders []instance.ID  `json:"holders"`
}

// sharedSysctls are the limits the labs raise together, with where their
// record and its lock live; tests point all of them into a temporary folder.
type sharedSysctls struct {
	limits       []sysctlLimit
	record, lock string
	// labsUp lists the instances with a bridge on the machine; Down
	// leaves the limits raised while another lab is up, even one started
	// by code that does not register in the record.
	labsUp func() []instance.ID
}

// machineSysctls are machine-wide limits that a few systemd hosts exhaust:
// each host's systemd, journald, dbus and udev-less services take inotify
// instances from root's shared budget (128 by default; past ~18 hosts new
// ones fail with "Too many open files"). Up raises them for the run and
// the last lab's Down puts back what was there.
var machineSysctls = sharedSysctls{
	limits: []sysctlLimit{
		{"/proc/sys/fs/inotify/max_user_instances", 8192},
		{"/proc/sys/fs/inotify/max_user_watches", 524288},
	},
	record: instance.SysctlRecord, lock: instance.SysctlLock, labsUp: bridgesUp,
}

// raiseSysctls raises the machine limits that are below the lab's needs
// and registers id as holding them.
func (f sharedSysctls) raiseSysctls(id instance.ID) error {
	return f.withRecord(func(rec *sysctlRecord) error { return f.raise(rec, id) })
}

func (f sharedSysctls) raise(rec *sysctlRecord, id instance.ID) error {
	for _, s := range f.limits {
		b, err := os.ReadFile(s.path)
		if err != nil {
			continue
		}
		cur := strings.TrimSpace(string(b))
		if n, err := strconv.Atoi(cur); err == nil && n >= s.min {
			continue
		}
		set := strconv.Itoa(s.min)
		if err := os.WriteFile(s.path, []byte(set), 0o644); err != nil {
			return fmt.Errorf("raise %s to %s: %w", s.path, set, err)
		}
		// The first raise keeps the machine's value; a later one (someone
		// lowered it meanwhile) must not record the lab's own.
		if !slices.ContainsFunc(rec.Changes, func(c sysctlChange) bool { return c.Path == s.path }) {
			rec.Changes = append(rec.Changes, sysctlChange{Path: s.path, Original: cur, Set: set})
		}
	}
	if !slices.Contains(rec.Holders, id) {
		rec.Holders = append(rec.Holders, id)
	}
	return f.save(rec)
}

// releaseSysctls drops id from the holders. When no other lab holds the
// limits or is up, it restores the machine's values (and those an old
// state record lists), unless someone has changed them since.
func (f sharedSysctls) releaseSysctls(id instance.ID, old []sysctlChange) error {
	return f.withRecord(func(rec *sysctlRecord) error { return f.release(rec, id, old) })
}

func (f sharedSysctls) release(rec *sysctlRecord, id instance.ID, old []sysctlChange) error {
	rec.Holders = slices.DeleteFunc(rec.Holders, func(h instance.ID) bool { return h == id })
	for _, c := range old {
		if !slices.ContainsFunc(rec.Changes, func(r sysctlChange) bool { return r.Path == c.Path }) {
			rec.Changes = append(rec.Changes, c)
		}
	}
	others := slices.DeleteFunc(f.labsUp(), func(h instance.ID) bool { return h == id })
	if len(rec.Holders) > 0 || len(others) > 0 {
		if len(rec.Holders) > 0 || len(rec.Changes) > 0 {
			return f.save(rec) // for the last lab's down to restore
		}
		return f.remove() // nothing to restore: the other labs raised it
	}
	for _, c := range rec.Changes {
		b, err := os.ReadFile(c.Path)
		if err != nil || strings.TrimSpace(string(b)) != c.Set {
			continue
		}
		if err := os.WriteFile(c.Path, []byte(c.Original), 0o644); err != nil {
			return fmt.Errorf("restore %s to %s: %w", c.Path, c.Original, err)
		}
	}
	return f.remove()
}

// remove deletes the record, and its folder once empty.
func (f sharedSysctls) remove() error {
	if err := os.Remove(f.record); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	_ = os.Remove(filepath.Dir(f.record)) // fails while not empty: fine
	return nil
}

// withRecord runs fn on the record under the lock that all instances share.
func (f sharedSysctls) withRecord(fn func(*sysctlRecord) error) error {
	unlock, err := flockFile(f.lock)
	if err != nil {
		return err
	}
	defer unlock()
	rec, err := f.load()
	if err != nil {
		return err
	}
	return fn(rec)
}

// load reads the record; an empty one when there is none.
func (f sharedSysctls) load() (*sysctlRecord, error) {
	var rec sysctlRecord
	b, err := os.ReadFile(f.record)
	if errors.Is(err, fs.ErrNotExist) {
		return &rec, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &rec); err != nil {
		return nil, fmt.Errorf("read %s: %w", f.record, err)
	}
	return &rec, nil
}

// save writes the record atomically.
func (f sharedSysctls) save(rec *sysctlRecord) error {
	b, err := json.MarshalIndent(rec, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.record), 0o755); err != nil {
		return err
	}
	tmp := f.record + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return fmt.Errorf("save %s: %w", f.record, err)
	}
	return os.Rename(tmp, f.record)
}
