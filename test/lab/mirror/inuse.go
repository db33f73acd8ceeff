package mirror

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
)

// A build removes the cache entries of older recipes (prune), but the
// cache is shared by every lab instance on the machine, and a lab that
// runs other code (another branch) may be serving an entry this build
// does not use. Such a lab holds its entries in use: a shared flock on
// the entry's folder, which prune respects.

var (
	heldMu sync.Mutex
	held   = map[string]*os.File{}
)

// HoldInUse marks the cache entry dir (a folder) in use until this process
// exits, so that no build of another process removes it meanwhile. Build
// holds the entries it returns; the lab's mirror server holds the ones it
// serves. Holding an entry twice is one hold.
func HoldInUse(dir string) error {
	heldMu.Lock()
	defer heldMu.Unlock()
	if _, ok := held[dir]; ok {
		return nil
	}
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("hold cache entry %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH); err != nil {
		f.Close()
		return fmt.Errorf("hold cache entry %s: %w", dir, err)
	}
	held[dir] = f
	return nil
}

// inUse reports whether another process holds the entry dir in use.
func inUse(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	return errors.Is(err, syscall.EWOULDBLOCK)
}
