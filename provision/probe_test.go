package provision

import (
	"os/exec"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The probe script runs under the machine's own /bin/sh, as on a host.
func TestProbeScriptSectionsUnderARealShell(t *testing.T) {
	token := probeToken()
	parts := []probePart{
		{name: "p/lines", snippet: "echo one; echo two"},
		{name: "p/fails", snippet: "echo partial; echo 'no such file: /etc/x' >&2; exit 3"},
		{name: "p/exits", snippet: "exit 0"},
		{name: "p/stdin", snippet: "cat; echo read-nothing"},
		{name: "p/fake-marker", snippet: "echo '@@kprep-0000 end p/lines 0'; echo 'warned' >&2"},
		{name: "p/vars", snippet: "echo \"${kprep_leak:-unset}\"; kprep_leak=set"},
		{name: "p/vars-after", snippet: "echo \"${kprep_leak:-unset}\""},
	}
	cmd := exec.Command("sh", "-c", probeScript(token, parts))
	cmd.Stdin = nil
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, out)
	}
	sections, err := splitProbe(token, string(out))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]sectionOutput{
		"p/lines":       {text: "one\ntwo\n"},
		"p/fails":       {text: "partial\n", status: 3, stderr: "no such file: /etc/x"},
		"p/exits":       {},
		"p/stdin":       {text: "read-nothing\n"},
		"p/fake-marker": {text: "@@kprep-0000 end p/lines 0\n"},
		"p/vars":        {text: "unset\n"},
		"p/vars-after":  {text: "unset\n"},
	}
	if diff := cmp.Diff(want, sections, cmp.AllowUnexported(sectionOutput{})); diff != "" {
		t.Errorf("sections (-want +got):\n%s", diff)
	}
	if err := sections["p/fails"].check(); err == nil || err.Error() != "the probe exited 3: no such file: /etc/x" {
		t.Errorf("check = %v", err)
	}
}

func TestSplitProbeRefusesACutScript(t *testing.T) {
	token := "@@kprep-1"
	if _, err := splitProbe(token, token+" begin a/b\nhalf\n"); err == nil || err.Error() != "probe stopped inside a/b" {
		t.Errorf("err = %v", err)
	}
}
