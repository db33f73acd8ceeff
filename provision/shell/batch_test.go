package shell

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// fakeTools puts systemctl and rpm on PATH that answer like the real ones
// and log each call, so a test can count them.
func fakeTools(t *testing.T) (dir, log string) {
	t.Helper()
	dir = t.TempDir()
	log = filepath.Join(dir, "calls")
	systemctl := `#!/bin/sh
echo "systemctl $*" >> ` + log + `
props=; units=
while [ $# -gt 0 ]; do
  case $1 in show|--) ;; -p) props="$props $2"; shift ;; *) units="$units $1" ;; esac
  shift
done
first=1
for u in $units; do
  [ -n "$first" ] || echo
  first=
  for p in $props; do
    case $u.$p in
      docker.service.MainPID) echo MainPID=42 ;;
      docker.service.ActiveState) echo ActiveState=active ;;
      docker.service.Environment) echo 'Environment=HTTP_PROXY=http://p:3128 "NO_PROXY=a=b,c"' ;;
      docker.service.LoadState) echo LoadState=loaded ;;
      *.LoadState) echo LoadState=not-found ;;
      *.MainPID) echo MainPID=0 ;;
      *) echo "$p=" ;;
    esac
  done
done
`
	rpm := `#!/bin/sh
echo "rpm $*" >> ` + log + `
for a; do
  case $a in -q|--qf|rpm*) continue ;; esac
  case $a in
    docker-ce) echo 'rpm docker-ce 3:26.1.4-1.el9' ;;
    runc) echo 'rpm runc (none):1.1.12-1.el9' ;;
    *) echo "package $a is not installed" ;;
  esac
done
`
	for name, body := range map[string]string{"systemctl": systemctl, "rpm": rpm} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir, log
}

// runBatched runs snippets as the engine does: the prelude, the batched
// files in their own subshell, each snippet in its own, then the files
// resolved into each snippet's output.
func runBatched(t *testing.T, shellPath, path string, snippets ...string) []string {
	t.Helper()
	plan := PlanBatch(snippets...)
	var script strings.Builder
	script.WriteString("PATH=" + path + "\n" + plan.Prelude())
	script.WriteString("echo '@@files'\n(\n" + plan.FilesSnippet() + "\n)\n")
	for _, s := range snippets {
		script.WriteString("echo '@@part'\n(\n" + s + "\n) </dev/null\n")
	}
	out := runScript(t, shellPath, script.String())
	chunks := strings.Split(out, "@@part\n")
	files, err := ParseBatchedFiles(strings.TrimPrefix(chunks[0], "@@files\n"))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var res []string
	for _, c := range chunks[1:] {
		res = append(res, files.Resolve(c))
	}
	return res
}

func runScript(t *testing.T, shellPath, script string) string {
	t.Helper()
	argv := strings.Fields(shellPath)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shellPath, err, out)
	}
	return string(out)
}

func shells(t *testing.T) []string {
	var out []string
	for _, s := range []string{"dash", "bash", "busybox"} {
		if p, err := exec.LookPath(s); err == nil {
			if s == "busybox" {
				p += " sh"
			}
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		t.Skip("no shell")
	}
	return out
}

// TestBatchAnswersAsSnippetsAlone: every snippet prints the same through the
// batch as it does alone, while systemctl and rpm are each started once.
func TestBatchAnswersAsSnippetsAlone(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(filepath.Base(strings.Fields(sh)[0]), func(t *testing.T) {
			bin, log := fakeTools(t)
			dir := t.TempDir()
			write := func(name, content string) string {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
				return p
			}
			hosts := write("hosts", "127.0.0.1 localhost\n")
			binary := write("bin", "a\x00b\nno final newline\xff")
			empty := write("empty", "")
			missing := filepath.Join(dir, "missing")
			sub := filepath.Join(dir, "sub")
			if err := os.Mkdir(sub, 0o755); err != nil {
				t.Fatal(err)
			}
			showVars := `; echo "pid=$kprep_MainPID active=$kprep_ActiveState env=$kprep_Environment load=$kprep_LoadState"`
			snippets := []string{
				File("hosts", hosts) + "\n" + File("bin", binary),
				File("etchosts", hosts) + "\n" + File("empty", empty) + "\n" + File("missing", missing) + "\n" + File("dir", sub),
				Show("docker.service", "MainPID", "ActiveState", "Environment") + showVars,
				Show("containerd.service", "MainPID", "LoadState") + showVars + "\n" + Show("docker.service", "LoadState") + showVars,
				Packages("docker-ce", "docker-ce-cli"),
				Packages("runc", "podman"),
			}
			path := bin + ":" + os.Getenv("PATH")
			var alone []string
			for _, s := range snippets {
				alone = append(alone, runScript(t, sh, "PATH="+path+"\n"+s))
			}
			aloneCalls := countCalls(t, log)
			if err := os.Remove(log); err != nil {
				t.Fatal(err)
			}
			batched := runBatched(t, sh, path, snippets...)
			for i := range snippets {
				if batched[i] != alone[i] {
					t.Errorf("snippet %d: batched\n%q\nalone\n%q", i, batched[i], alone[i])
				}
			}
			if !strings.Contains(batched[0], "file bin YQBiCm5vIGZpbmFsIG5ld2xpbmX/") || !strings.Contains(batched[2], "pid=42 active=active") {
				t.Errorf("unexpected answers: %q", batched)
			}
			calls := countCalls(t, log)
			if calls["systemctl"] != 1 || calls["rpm"] != 1 {
				t.Errorf("batched calls %v, want one systemctl and one rpm (alone: %v)", calls, aloneCalls)
			}
		})
	}
}

func countCalls(t *testing.T, log string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		out[strings.Fields(line)[0]]++
	}
	return out
}

// TestBatchedFilesDetectTornReads: sizes that do not add up to what was
// read are an error, never a silently shifted file.
func TestBatchedFilesDetectTornReads(t *testing.T) {
	if _, err := ParseBatchedFiles("size 3 /a\nsize 2 /b\nblob YWJjZA==\n"); err == nil {
		t.Error("4 bytes for 5: no error")
	}
	if _, err := ParseBatchedFiles("size 1 /a\nblob YWJjZA==\n"); err == nil {
		t.Error("4 bytes for 1: no error")
	}
	f, err := ParseBatchedFiles("size 3 /a\nsize 1 /b\nblob YWJjZA==\n")
	if err != nil || string(f["/a"]) != "abc" || string(f["/b"]) != "d" {
		t.Errorf("got %q, %v", f, err)
	}
}

// TestPlanBatchFindsOnlyBatchedCalls: paths and names a shell would
// expand are read by their snippet alone, and never enter the batch.
func TestPlanBatchFindsOnlyBatchedCalls(t *testing.T) {
	p := PlanBatch(File("a", "/etc/with space"), File("b", "/proc/1/environ"), File("c", "/etc/hosts"),
		Show("x$(id).service", "MainPID"), Show("a.service", "MainPID"), Show("b.service", "ActiveState", "MainPID"),
		Packages("a;b"), Packages("docker-ce"))
	if strings.Join(p.Files, ",") != "/etc/hosts" || strings.Join(p.Units, ",") != "a.service,b.service" ||
		strings.Join(p.Props, ",") != "MainPID,ActiveState" || strings.Join(p.Packages, ",") != "docker-ce" {
		t.Errorf("plan %+v", p)
	}
	if !PlanBatch("echo hi").Empty() {
		t.Error("a snippet without batched calls planned a batch")
	}
}

// TestPackageRecordSparesTheQuery: an apply's probe writes the answer down;
// later probes read it while the database is unchanged, and ask rpm again
// once it changed. A plan's probe never writes.
func TestPackageRecordSparesTheQuery(t *testing.T) {
	for _, sh := range shells(t) {
		t.Run(filepath.Base(strings.Fields(sh)[0]), func(t *testing.T) {
			bin, log := fakeTools(t)
			dir := t.TempDir()
			db, record := filepath.Join(dir, "Packages"), filepath.Join(dir, "packages")
			if err := os.WriteFile(db, []byte("v1"), 0o644); err != nil {
				t.Fatal(err)
			}
			snippet := Packages("docker-ce", "runc", "podman")
			plan := PlanBatch(snippet)
			prelude := strings.NewReplacer(packageDatabases, db, PackageRecord, record).Replace(plan.Prelude())
			probe := func(recording bool) string {
				script := "PATH=" + bin + ":" + os.Getenv("PATH") + "\n"
				if recording {
					script += RecordingVar + "=1\n"
				}
				return runScript(t, sh, script+prelude+snippet)
			}
			rpmCalls := func() int {
				b, _ := os.ReadFile(log)
				return strings.Count("\n"+string(b), "\nrpm ")
			}
			want := "rpm docker-ce 3:26.1.4-1.el9\nrpm runc (none):1.1.12-1.el9\n"
			steps := []struct {
				recording bool
				change    string // new database content before the probe
				calls     int    // rpm calls so far after it
			}{
				{false, "", 1},   // a plan: asks, writes nothing
				{true, "", 2},    // an apply: asks, writes the record
				{true, "", 2},    // read from the record
				{false, "", 2},   // a plan reads it too
				{false, "v2", 3}, // the database changed: ask (a plan: no record)
				{true, "", 4},    // still stale: ask, write
				{true, "", 4},
			}
			for i, s := range steps {
				if s.change != "" {
					if err := os.WriteFile(db, []byte(s.change), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				if got := probe(s.recording); !strings.HasPrefix(got, want) {
					t.Fatalf("probe %d printed %q, want %q first", i, got, want)
				}
				if got := rpmCalls(); got != s.calls {
					t.Fatalf("after probe %d: %d rpm calls, want %d", i, got, s.calls)
				}
			}
		})
	}
}
