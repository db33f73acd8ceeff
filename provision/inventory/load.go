package inventory

import (
	"fmt"
	"os"
)

// Options are the ways the loader looks at the machine it runs on. The zero
// value uses the real environment and file system; tests replace them so
// that they do not depend on either.
type Options struct {
	// LookupEnv reports whether an environment variable is set (passwordEnv
	// and friends name variables that must be). Default os.LookupEnv. A
	// command that will not connect to hosts may pass one that always says yes.
	LookupEnv func(name string) (string, bool)
	// FileExists reports whether a key or known_hosts file is there.
	// Default: os.Stat succeeds and it is not a folder.
	FileExists func(path string) bool
	// HomeDir is the folder ~ stands for. Default os.UserHomeDir.
	HomeDir func() (string, error)
}

// complete fills the functions left nil with the real ones.
func (o Options) complete() Options {
	if o.LookupEnv == nil {
		o.LookupEnv = os.LookupEnv
	}
	if o.FileExists == nil {
		o.FileExists = func(path string) bool {
			fi, err := os.Stat(path)
			return err == nil && !fi.IsDir()
		}
	}
	if o.HomeDir == nil {
		o.HomeDir = os.UserHomeDir
	}
	return o
}

// Load reads, defaults and validates the inventory file at path, looking at
// the real environment and file system. On error it returns an ErrorList
// with every problem found, or the error reading the file.
func Load(path string) (*Cluster, error) {
	return LoadWith(path, Options{})
}

// LoadWith is Load with its look at the machine replaced by opts.
func LoadWith(path string, opts Options) (*Cluster, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return Parse(path, data, opts)
}

// Parse is Load for a file already read; file names it in errors, and
// relative key paths are resolved against its folder.
func Parse(file string, data []byte, opts Options) (*Cluster, error) {
	root, serr := parseDocument(file, data)
	if serr != nil {
		return nil, ErrorList{serr}
	}
	sink := &errorSink{file: file}
	c := &Cluster{Path: file}
	c.src = decodeCluster(root, c, sink)
	if !sink.full {
		ApplyDefaults(c, opts)
		validate(c, opts, sink)
	}
	if len(sink.list) > 0 {
		sortErrors(sink.list)
		return nil, sink.list
	}
	return c, nil
}

// Validate checks a Cluster, after ApplyDefaults, as Load does: it returns an
// ErrorList with every problem, placed in the file when c came from Load.
// Callers that build or change a Cluster in code re-check it with this.
func Validate(c *Cluster, opts Options) error {
	sink := &errorSink{file: c.Path}
	validate(c, opts, sink)
	if len(sink.list) == 0 {
		return nil
	}
	sortErrors(sink.list)
	return sink.list
}
