package runtime

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// dockerInfo is the part of `docker info --format '{{json .}}'` that shows
// which daemon.json settings the running dockerd has taken.
type dockerInfo struct {
	LoggingDriver      string
	CgroupDriver       string
	DockerRootDir      string
	LiveRestoreEnabled bool
	RegistryConfig     struct {
		InsecureRegistryCIDRs []string
		IndexConfigs          map[string]struct {
			Name   string
			Secure bool
		}
		Mirrors []string
	}
}

func parseDockerInfo(raw []byte) (dockerInfo, error) {
	var info dockerInfo
	if err := json.Unmarshal(raw, &info); err != nil {
		return info, fmt.Errorf("docker info: %v", err)
	}
	return info, nil
}

// normalizeMirror drops the trailing slash dockerd adds to every mirror
// URL, so a mirror written with or without one compares equal.
func normalizeMirror(m string) string { return strings.TrimRight(m, "/") }

// insecureInUse lists the insecure registries the daemon runs with: its
// insecure CIDR ranges (without the loopback ones it always adds) and the
// registries it does not check TLS for, sorted.
func insecureInUse(info dockerInfo) []string {
	var out []string
	for _, c := range info.RegistryConfig.InsecureRegistryCIDRs {
		if c != "127.0.0.0/8" && c != "::1/128" {
			out = append(out, c)
		}
	}
	for name, ic := range info.RegistryConfig.IndexConfigs {
		if !ic.Secure {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// normalizeInsecure writes a configured entry the way dockerd reports it:
// a CIDR range masked, a host[:port] as written.
func normalizeInsecure(e string) string {
	if p, err := netip.ParsePrefix(e); err == nil {
		return p.Masked().String()
	}
	return e
}

// mirrorHosts are the host[:port] of the mirrors: dockerd may list a plain
// http mirror among the insecure registries by itself.
func mirrorHosts(mirrors []string) []string {
	var out []string
	for _, m := range mirrors {
		if u, err := url.Parse(m); err == nil && u.Host != "" {
			out = append(out, u.Host)
		}
	}
	return out
}

// dockerInfoDiff compares the running daemon with the settings daemon.json
// asks for. reload lists what SIGHUP applies (mirrors, insecure registries,
// live-restore); restart what only a restart does.
func dockerInfoDiff(info dockerInfo, want effectiveDaemon) (reload, restart []string) {
	if info.LoggingDriver != want.LogDriver {
		restart = append(restart, fmt.Sprintf("docker runs with log driver %s, daemon.json says %s", info.LoggingDriver, want.LogDriver))
	}
	if info.CgroupDriver != want.CgroupDriver {
		restart = append(restart, fmt.Sprintf("docker runs with cgroup driver %s, daemon.json says %s", info.CgroupDriver, want.CgroupDriver))
	}
	if strings.TrimRight(info.DockerRootDir, "/") != strings.TrimRight(want.DataRoot, "/") {
		restart = append(restart, fmt.Sprintf("docker runs with data root %s, daemon.json says %s", info.DockerRootDir, want.DataRoot))
	}
	var running, wanted []string
	for _, m := range info.RegistryConfig.Mirrors {
		running = append(running, normalizeMirror(m))
	}
	for _, m := range want.Mirrors {
		wanted = append(wanted, normalizeMirror(m))
	}
	if !slices.Equal(running, wanted) {
		reload = append(reload, fmt.Sprintf("docker runs with registry mirrors %s, daemon.json says %s", listOrNone(running), listOrNone(wanted)))
	}
	inUse := insecureInUse(info)
	var wantInsecure []string
	for _, e := range want.Insecure {
		wantInsecure = append(wantInsecure, normalizeInsecure(e))
	}
	slices.Sort(wantInsecure)
	extra := slices.DeleteFunc(slices.Clone(inUse), func(e string) bool {
		return slices.Contains(wantInsecure, e) || slices.Contains(mirrorHosts(want.Mirrors), e)
	})
	missing := slices.DeleteFunc(slices.Clone(wantInsecure), func(e string) bool { return slices.Contains(inUse, e) })
	if len(extra)+len(missing) > 0 {
		reload = append(reload, fmt.Sprintf("docker runs with insecure registries %s, daemon.json says %s", listOrNone(inUse), listOrNone(wantInsecure)))
	}
	if info.LiveRestoreEnabled != want.LiveRestore {
		reload = append(reload, fmt.Sprintf("docker runs with live-restore %v, daemon.json says %v", info.LiveRestoreEnabled, want.LiveRestore))
	}
	return reload, restart
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return "[" + strings.Join(l, " ") + "]"
}
