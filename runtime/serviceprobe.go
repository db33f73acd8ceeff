package runtime

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/kprep/kprep/provision/shell"
)

// managedUnit is a daemon ServiceStep keeps running with the configuration
// on disk.
type managedUnit struct {
	Name    string // record and probe label: docker, containerd, cri-docker
	Service string // docker.service
	// Socket is a socket unit to enable and start with the service.
	Socket string
	// Config is the file the daemon reads at start ("" when none is tracked).
	Config string
	// DockerInfo compares `docker info` with daemon.json.
	DockerInfo bool
	// Cmdline compares the running command line with the unit's ExecStart
	// (cri-dockerd's configuration is its command line).
	Cmdline bool
}

// unitSnippet prints what ServiceStep needs of one unit, each line
// labelled with the unit's name: its systemd state, and of its running
// process the executable, environment and command line.
//
// It is built to cost a converged host little: one systemctl call per
// unit, and `docker info` (a tenth of a second of dockerd's and the
// client's CPU) only where kprep's record does not already vouch for what
// the running dockerd uses: the record names this very process and holds
// daemon.json as it is now, and the file was not written after the record
// (kprep writes a record only once it has seen the daemon run with that
// file; see applyUnit).
func unitSnippet(u managedUnit) string {
	n, s := u.Name, shell.Quote(u.Service)
	var b strings.Builder
	props := []string{"LoadState", "ActiveState", "UnitFileState", "MainPID", "NeedDaemonReload", "Environment", "ExecStart", "ActiveEnterTimestamp"}
	b.WriteString(shell.Show(u.Service, props...) + "\n")
	for _, p := range props[:len(props)-1] {
		fmt.Fprintf(&b, "printf '%%s\\n' \"%s.%s=$kprep_%s\"\n", n, p, p)
	}
	// The socket's show below sets kprep_ActiveState too: the service's
	// state and start are kept under names of their own. The running
	// executable is the unit's when the two are the same file (the test
	// builtin, no process); readlink then tells a replaced one "(deleted)".
	fmt.Fprintf(&b, `pid=$kprep_MainPID
kprep_sactive=$kprep_ActiveState
kprep_since=$kprep_ActiveEnterTimestamp
if [ "${pid:-0}" -gt 0 ] 2>/dev/null; then
  kprep_x=${kprep_ExecStart#*path=}; kprep_x=${kprep_x%%%% *}
  if [ -n "$kprep_x" ] && [ /proc/$pid/exe -ef "$kprep_x" ]; then echo "%[1]s.exe=$kprep_x"; else echo "%[1]s.exe=$(readlink /proc/$pid/exe 2>/dev/null)"; fi
  printf 'file %[1]s.environ %%s\n' "$(base64 -w0 < /proc/$pid/environ 2>/dev/null)"
fi
`, n)
	if u.Cmdline {
		fmt.Fprintf(&b, `if [ "${pid:-0}" -gt 0 ] 2>/dev/null; then printf 'file %[1]s.cmdline %%s\n' "$(base64 -w0 < /proc/$pid/cmdline 2>/dev/null)"; fi
`, n)
	}
	if u.Socket != "" {
		b.WriteString(shell.Show(u.Socket, "ActiveState", "UnitFileState") + "\n")
		fmt.Fprintf(&b, "echo \"%[1]s.socket.ActiveState=$kprep_ActiveState\"; echo \"%[1]s.socket.UnitFileState=$kprep_UnitFileState\"\n", n)
	}
	if u.Config != "" {
		b.WriteString(shell.File(n+".config", u.Config) + "\n")
		b.WriteString(startUnlessRecorded(n+".", n, "pid", "kprep_since", u.Config))
		b.WriteString(shell.File(n+".loaded", loadedPath(n)) + "\n")
	}
	if u.DockerInfo {
		rec, conf := shell.Quote(loadedPath(n)), shell.Quote(u.Config)
		// The record after its PID line and the file are compared line by
		// line with the shell's read (a line's end of file too), no process.
		fmt.Fprintf(&b, `kprep_vouched=
if [ -f %[3]s ] && [ -f %[4]s ] && [ ! %[4]s -nt %[3]s ] && read -r kprep_rpid < %[3]s && [ "$kprep_rpid" = "$pid" ]; then
  kprep_vouched=1
  {
    read -r kprep_a <&4
    while :; do
      kprep_a=; kprep_b=
      IFS= read -r kprep_a <&4; kprep_ra=$?
      IFS= read -r kprep_b <&5; kprep_rb=$?
      if [ "$kprep_ra" != "$kprep_rb" ] || [ "$kprep_a" != "$kprep_b" ]; then kprep_vouched=; break; fi
      [ "$kprep_ra" = 0 ] || break
    done
  } 4<%[3]s 5<%[4]s
fi
if [ -n "$kprep_vouched" ]; then echo "%[2]s.info_vouched=1"
elif [ "$kprep_sactive" = active ]; then printf 'file %[2]s.info %%s\n' "$(timeout 30 docker info --format '{{json .}}' 2>/dev/null | base64 -w0)"; fi
`, s, n, rec, conf)
	}
	return b.String()
}

// unitState is one unit as probed.
type unitState struct {
	Loaded, Active bool
	UnitFileState  string
	PID            int
	NeedReload     bool
	Started        int64 // when it last became active, Unix seconds; 0 unknown
	ExeDeleted     bool
	RunningEnv     map[string]string // proxy variables of the running process
	ConfiguredEnv  map[string]string // proxy variables the unit sets
	Cmdline        []string
	ExecArgv       []string
	SocketActive   bool
	SocketEnabled  string
	Config         []byte
	ConfigExists   bool
	ConfigMtime    int64
	Record         loadedRecord
	HasRecord      bool
	Info           []byte
	HasInfo        bool
	// InfoVouched is set when the probe skipped `docker info` because
	// kprep's record says this dockerd runs with daemon.json as it is.
	InfoVouched bool
}

// proxyVars are the environment variables the proxy drop-ins set; either
// case works for Go programs such as dockerd and containerd.
var proxyVars = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"}

func readUnitState(st shell.State, u managedUnit) unitState {
	v := func(k string) string { return st.Values[u.Name+"."+k] }
	s := unitState{
		Loaded:        v("LoadState") == "loaded",
		Active:        v("ActiveState") == "active",
		UnitFileState: v("UnitFileState"),
		NeedReload:    v("NeedDaemonReload") == "yes",
		ExeDeleted:    strings.HasSuffix(v("exe"), " (deleted)"),
		ConfiguredEnv: proxyOnly(splitEnvironment(v("Environment"))),
		ExecArgv:      execStartArgv(v("ExecStart")),
		SocketActive:  v("socket.ActiveState") == "active",
		SocketEnabled: v("socket.UnitFileState"),
	}
	s.PID, _ = strconv.Atoi(v("MainPID"))
	s.Started, _ = strconv.ParseInt(v("started"), 10, 64)
	s.ConfigMtime, _ = strconv.ParseInt(v("mtime"), 10, 64)
	if env, ok := st.File(u.Name + ".environ"); ok {
		s.RunningEnv = proxyOnly(splitNul(env))
	}
	if cmd, ok := st.File(u.Name + ".cmdline"); ok {
		s.Cmdline = splitNul(cmd)
	}
	s.Config, s.ConfigExists = st.File(u.Name + ".config")
	raw, exists := st.File(u.Name + ".loaded")
	s.Record, s.HasRecord = parseLoaded(raw, exists)
	s.Info, s.HasInfo = st.File(u.Name + ".info")
	s.HasInfo = s.HasInfo && len(bytes.TrimSpace(s.Info)) > 0
	s.InfoVouched = v("info_vouched") == "1"
	return s
}

func splitNul(b []byte) []string {
	var out []string
	for _, f := range bytes.Split(b, []byte{0}) {
		if len(f) > 0 {
			out = append(out, string(f))
		}
	}
	return out
}

// splitEnvironment reads `systemctl show -p Environment`'s value: VAR=value
// words separated by spaces, a word with spaces in it in double quotes.
func splitEnvironment(s string) []string {
	var out []string
	var cur strings.Builder
	inQuote, escaped, started := false, false, false
	for _, r := range s {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && inQuote:
			escaped = true
		case r == '"':
			inQuote = !inQuote
			started = true
		case r == ' ' && !inQuote:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if started {
		out = append(out, cur.String())
	}
	return out
}

// proxyOnly keeps the proxy variables of VAR=value pairs.
func proxyOnly(assignments []string) map[string]string {
	out := map[string]string{}
	for _, a := range assignments {
		k, val, ok := strings.Cut(a, "=")
		if !ok {
			continue
		}
		for _, p := range proxyVars {
			if k == p {
				out[k] = val
			}
		}
	}
	return out
}

// execStartArgv reads the argv of `systemctl show -p ExecStart`'s value,
// "{ path=/usr/bin/x ; argv[]=/usr/bin/x --flag ; ignore_errors=no ; ... }".
func execStartArgv(s string) []string {
	_, rest, ok := strings.Cut(s, "argv[]=")
	if !ok {
		return nil
	}
	argv, _, _ := strings.Cut(rest, " ; ")
	return strings.Fields(argv)
}
