package shell

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The snippets are run by a real sh, so quoting and records are proven
// against the shell, not against our idea of it.
func runSh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).Output()
	if err != nil {
		t.Fatalf("sh: %v\n%s", err, script)
	}
	return string(out)
}

func TestQuoteSurvivesTheShell(t *testing.T) {
	for _, s := range []string{"plain", "", "it's", `a "b" $c`, "line1\nline2", `back\slash`, "dev-mapper-centos\\x2dswap.swap"} {
		got := runSh(t, "printf %s "+Quote(s))
		if got != s {
			t.Errorf("Quote(%q) came back as %q", s, got)
		}
	}
}

func TestFileRecords(t *testing.T) {
	dir := t.TempDir()
	content := "line one\n# a 'quoted' line with = and file - \n\nno newline at end"
	path := dir + "/with space.conf"
	runSh(t, "printf %s "+Quote(content)+" > "+Quote(path))
	out := runSh(t, File("present", path)+"\n"+File("absent", dir+"/nope")+"\n"+
		Value("kernel", "echo 5.14; echo second")+"\n"+Status("ok", "true")+"\n"+Status("bad", "exit 3")+"\necho free line")
	st, err := Parse(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := st.File("present"); !ok || string(got) != content {
		t.Errorf("present = %q, %v", got, ok)
	}
	if _, ok := st.File("absent"); ok || !st.HasFile("absent") {
		t.Errorf("absent: exists=%v seen=%v, want false true", ok, st.HasFile("absent"))
	}
	want := map[string]string{"kernel": "5.14 second", "ok": "0", "bad": "3"}
	if diff := cmp.Diff(want, st.Values); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if !cmp.Equal(st.Lines, []string{"free line"}) {
		t.Errorf("lines = %q", st.Lines)
	}
}

func TestParseRejectsBrokenRecord(t *testing.T) {
	_, err := Parse("file x !!notbase64\n")
	if err == nil || !strings.Contains(err.Error(), "file x") {
		t.Fatalf("err = %v", err)
	}
}

// Value folds a command's lines into one, as `tr '\n' ' '` and a sed that
// cuts trailing spaces did, in every shell a host may run the probe with.
func TestValueFoldsLinesInEveryShell(t *testing.T) {
	cases := map[string]string{
		"printf 'a  b\\nc\\n\\nd  \\n\\n'":   "a  b c  d",
		"echo one":                           "one",
		"true":                               "",
		"echo '100% \"quoted\" $HOME *'":     `100% "quoted" $HOME *`,
		"echo kept; echo dropped >&2; false": "kept",
		"printf 'x\\n \\n'":                  "x",
	}
	for _, sh := range []string{"sh", "dash", "bash"} {
		if _, err := exec.LookPath(sh); err != nil {
			continue
		}
		for cmd, want := range cases {
			out, err := exec.Command(sh, "-c", Value("k", cmd)).Output()
			if err != nil {
				t.Fatalf("%s: %v", sh, err)
			}
			if got := string(out); got != "k="+want+"\n" {
				t.Errorf("%s: Value(%q) printed %q, want %q", sh, cmd, got, "k="+want+"\n")
			}
		}
	}
}
