package runtime

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/kprep/kprep/provision/shell"
)

// A loaded record says which configuration a running daemon has read. kprep
// writes /run/kprep/NAME.loaded when it (re)starts or reloads a daemon, and
// before it replaces a config that the running daemon had read: the
// daemon's PID on the first line, the config file's content after it. With
// it, ServiceStep knows exactly which keys changed since (a reload is
// enough for registry mirrors; log options need a restart) instead of
// guessing from times. /run is emptied at boot, when PIDs start over.

// loadedDir holds the records.
const loadedDir = "/run/kprep"

func loadedPath(name string) string { return loadedDir + "/" + name + ".loaded" }

// loadedRecord is one record read back.
type loadedRecord struct {
	PID     int
	Content []byte
}

// parseLoaded reads a record; false when it is missing or unreadable.
func parseLoaded(raw []byte, exists bool) (loadedRecord, bool) {
	if !exists {
		return loadedRecord{}, false
	}
	first, rest, _ := bytes.Cut(raw, []byte("\n"))
	pid, err := strconv.Atoi(string(bytes.TrimSpace(first)))
	if err != nil || pid <= 0 {
		return loadedRecord{}, false
	}
	return loadedRecord{PID: pid, Content: rest}, true
}

// startUnlessRecorded returns a snippet that prints PREFIXstarted= (when
// the daemon whose PID is in $pidVar became active, systemd's timestamp in
// $sinceVar as Unix seconds) and PREFIXmtime= (config's). Both matter only
// when kprep has no record of what that very process read (configChange,
// loadedSnapshot); with one, both are printed empty, and a converged
// host's probe spares the date and the stat.
func startUnlessRecorded(prefix, name, pidVar, sinceVar, config string) string {
	return fmt.Sprintf(`kprep_rpid=; [ -r %[3]s ] && read -r kprep_rpid < %[3]s
if [ "${%[4]s:-0}" -gt 0 ] 2>/dev/null && [ "$kprep_rpid" = "$%[4]s" ]; then echo "%[1]sstarted="; echo "%[1]smtime="
else
  if [ -n "$%[5]s" ]; then echo "%[1]sstarted=$(date -d "$%[5]s" +%%s 2>/dev/null)"; else echo "%[1]sstarted="; fi
  echo "%[1]smtime=$(stat -c %%Y %[2]s 2>/dev/null)"
fi
`, prefix, shell.Quote(config), shell.Quote(loadedPath(name)), pidVar, sinceVar)
}

// encodeLoaded writes a record.
func encodeLoaded(r loadedRecord) []byte {
	return append([]byte(strconv.Itoa(r.PID)+"\n"), r.Content...)
}

// recordLoadedCommand writes the record of a daemon that has just read its
// config: its PID now and the config file as it is now.
func recordLoadedCommand(name, service, configPath string) string {
	p := shell.Quote(loadedPath(name))
	return "mkdir -p -m 0700 " + loadedDir + " && { systemctl show -p MainPID " + shell.Quote(service) +
		" | cut -d= -f2; cat " + shell.Quote(configPath) + " 2>/dev/null; } > " + p + ".tmp && mv -f " + p + ".tmp " + p
}
