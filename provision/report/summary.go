package report

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/kprep/kprep/provision"
)

// Summary prints the end-of-run table (host, step, result, duration), then
// what changed or would change, then the failures, last, where they are
// seen first.
func Summary(w io.Writer, rep *provision.Report, style Style) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTEP\tRESULT\tDURATION")
	for _, h := range rep.Hosts {
		if h.Error != "" {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Name, "-", "failed", duration(h.Duration))
		}
		for _, s := range h.Steps {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", h.Name, s.Name, s.Status, duration(s.Duration))
		}
	}
	tw.Flush()

	verb := "Changed"
	if rep.Mode == provision.ModePlan {
		verb = "Pending changes"
	}
	var changes strings.Builder
	for _, h := range rep.Hosts {
		for _, s := range h.Steps {
			if s.Status != provision.StatusChanged && s.Status != provision.StatusPending {
				continue
			}
			fmt.Fprintf(&changes, "  %s %s\n", h.Name, s.Name)
			for _, c := range s.Changes {
				fmt.Fprintf(&changes, "      - %s\n", c.Summary)
				if c.Action != "" {
					fmt.Fprintf(&changes, "        %s\n", style.Faint("-> "+c.Action))
				}
			}
		}
	}
	if changes.Len() > 0 {
		fmt.Fprintf(w, "\n%s:\n%s", verb, changes.String())
	}
	if line := ownTime(rep); line != "" {
		fmt.Fprintf(w, "\n%s\n", style.Faint(line))
	}

	var failures strings.Builder
	for _, h := range rep.Hosts {
		if h.Error != "" {
			fmt.Fprintf(&failures, "  %s: %s\n", h.Name, indent(h.Error))
		}
		if h.Interrupted != "" {
			fmt.Fprintf(&failures, "  %s: interrupted during %s; the step may be half done, rerun apply to finish it\n", h.Name, h.Interrupted)
		}
		for _, s := range h.Steps {
			if s.Status == provision.StatusFailed {
				fmt.Fprintf(&failures, "  %s %s: %s\n", h.Name, s.Name, indent(s.Error))
			}
		}
	}
	var warnings []string
	for _, h := range rep.Hosts {
		for _, s := range h.Steps {
			for _, warning := range s.Warnings {
				warnings = append(warnings, h.Name+" "+s.Name+": "+warning)
			}
		}
	}
	warnings = append(warnings, rep.Warnings...)
	if len(warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings:\n")
		for _, warning := range warnings {
			fmt.Fprintf(w, "  %s\n", indent(warning))
		}
	}
	if failures.Len() > 0 {
		fmt.Fprintf(w, "\n%s\n%s", style.Red("Failures:"), failures.String())
	}
	fmt.Fprintf(w, "\n%s\n", totals(rep))
}

// ownTime says, for an apply that changed something, how the hosts' time
// went: on the steps' changes (package managers, daemons, files) or on
// kprep's own connecting, probing and deciding. Waits for other hosts are
// neither. It is empty when no step applied anything.
func ownTime(rep *provision.Report) string {
	t := rep.Time
	if t.Apply == 0 {
		return ""
	}
	return fmt.Sprintf("Host time: %s applying changes, %s kprep's own (%.0f%%: %s in %s, %s connecting)",
		seconds(t.Apply), seconds(t.Own), 100*t.Own.Seconds()/(t.Apply+t.Own).Seconds(), seconds(t.Probe), plural(t.Probes, "probe"), seconds(t.Connect))
}

func seconds(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

// totals is the last line: counts of hosts and step results.
func totals(rep *provision.Report) string {
	counts := map[provision.Status]int{}
	failedHosts := 0
	for _, h := range rep.Hosts {
		if h.Failed() {
			failedHosts++
		}
		for _, s := range h.Steps {
			counts[s.Status]++
		}
	}
	parts := []string{plural(len(rep.Hosts), "host")}
	for _, st := range []provision.Status{provision.StatusChanged, provision.StatusPending, provision.StatusUnchanged, provision.StatusFailed, provision.StatusSkipped} {
		if counts[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[st], st))
		}
	}
	if failedHosts > 0 {
		parts = append(parts, plural(failedHosts, "host")+" failed")
	}
	return fmt.Sprintf("%s: %s in %s", rep.Mode, strings.Join(parts, ", "), duration(rep.Duration))
}

func indent(s string) string {
	return strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n      ")
}

// JSON prints the report as one JSON document.
func JSON(w io.Writer, rep *provision.Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rep)
}

// FactsTable prints what was learned of each host.
func FactsTable(w io.Writer, rep *provision.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tADDRESS\tOS\tFAMILY\tARCH\tKERNEL\tCGROUP\tPKG\tUSER\tERROR")
	for _, h := range rep.Hosts {
		f := h.Facts
		if f == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t%s\n", h.Name, h.Address, firstLine(h.Error))
			continue
		}
		cg := "-"
		if f.CgroupV > 0 {
			cg = fmt.Sprintf("v%d", f.CgroupV)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", h.Name, h.Address, f.OSName, f.Family, f.Arch,
			f.Kernel, cg, f.PkgManager, f.User, firstLine(h.Error))
	}
	tw.Flush()
}

func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
