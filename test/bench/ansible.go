package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kprep/kprep/test/lab/lab"
)

// playbook is the Ansible side of the bench, relative to the repository
// root where `make bench-scale` runs.
const playbook = "test/bench/seed.yml"

// ansible runs seed.yml on the lab's hosts as a careful user would set
// Ansible up for speed: pipelining, ControlPersist, forks = kprep's
// concurrency, the Python interpreter named (no discovery round trip).
type ansible struct {
	dir    string // inventory, config, variables and control sockets
	play   string
	phases string // the playbook's tags to run: kprep's phases
	env    []string
}

func newAnsible(ctx context.Context, l *lab.Lab, forks int, sudoPassword, phases string) (*ansible, error) {
	play, err := filepath.Abs(playbook)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(play); err != nil {
		return nil, fmt.Errorf("%v: run the bench from the repository's root", err)
	}
	dir, err := os.MkdirTemp("", "kprep-bench-ansible-")
	if err != nil {
		return nil, err
	}
	a := &ansible{dir: dir, play: play, phases: phases}
	vars, err := seedVars(ctx, l, dir, phases)
	if err != nil {
		a.close()
		return nil, err
	}
	var inv strings.Builder
	inv.WriteString("[lab]\n")
	for _, h := range l.Hosts() {
		fmt.Fprintf(&inv, "%s ansible_host=%s ansible_user=%s\n", h.Name, h.Address, h.SSHUser)
	}
	fmt.Fprintf(&inv, "[lab:vars]\nansible_ssh_private_key_file=%s\nansible_python_interpreter=/usr/bin/python3\n", l.KeyFile())
	cfg := fmt.Sprintf(`[defaults]
forks = %d
inventory = %s
host_key_checking = True
retry_files_enabled = False
stdout_callback = default
[ssh_connection]
pipelining = True
control_path_dir = %s
ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=%s -o StrictHostKeyChecking=accept-new -o LogLevel=ERROR -o KexAlgorithms=%s
`, forks, filepath.Join(dir, "hosts"), filepath.Join(dir, "cp"), l.KnownHostsFile(), sameKex)
	vars["ansible_become_password"] = sudoPassword
	varsJSON, err := json.Marshal(vars)
	if err != nil {
		a.close()
		return nil, err
	}
	for name, content := range map[string]string{"hosts": inv.String(), "ansible.cfg": cfg, "vars.json": string(varsJSON)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			a.close()
			return nil, err
		}
	}
	a.env = append(os.Environ(), "ANSIBLE_CONFIG="+filepath.Join(dir, "ansible.cfg"), "ANSIBLE_NOCOLOR=1")
	return a, nil
}

// seedVars are the playbook's variables: the sysctl file and daemon.json
// as kprep wrote them on the first host (the same on every host), copied
// into dir, so that both tools hold the hosts to the same state.
func seedVars(ctx context.Context, l *lab.Lab, dir, phases string) (map[string]any, error) {
	first := l.Hosts()[0].Name
	read := func(path string) (string, error) {
		out, _, err := l.Exec(ctx, first, "cat", path)
		if err != nil {
			return "", fmt.Errorf("read %s on %s: %w", path, first, err)
		}
		return string(out), nil
	}
	sysctlConf, err := read("/etc/sysctl.d/k8s.conf")
	if err != nil {
		return nil, err
	}
	// Without the runtime phase there is no daemon.json, and the
	// playbook's runtime tasks do not run.
	daemonJSON := "{}"
	if slices.Contains(strings.Split(phases, ","), "runtime") {
		if daemonJSON, err = read("/etc/docker/daemon.json"); err != nil {
			return nil, err
		}
	}
	var keys []string
	for _, line := range strings.Split(sysctlConf, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok {
			keys = append(keys, strings.TrimSpace(k)+"="+strings.TrimSpace(v))
		}
	}
	vars := map[string]any{"sysctl_keys": keys}
	for name, content := range map[string]string{"sysctl_conf": sysctlConf, "daemon_json": daemonJSON} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return nil, err
		}
		vars[name] = path
	}
	return vars, nil
}

var recapChanged = regexp.MustCompile(`(?m)^\S+\s+:\s+ok=\d+\s+changed=(\d+)`)

// run runs the playbook once; that it changes anything on hosts kprep
// converged is an error (it would not be checking what kprep checks).
// It returns its CPU time, with its workers' and ssh clients'.
func (a *ansible) run(ctx context.Context) (float64, error) {
	cmd := exec.CommandContext(ctx, "ansible-playbook", a.play, "--tags", a.phases, "-e", "@"+filepath.Join(a.dir, "vars.json"))
	cmd.Env = a.env
	// Ansible's workers and ssh masters may outlive a cancelled run and
	// hold its output pipe: do not wait for them for ever.
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("ansible-playbook: %v\n%s", err, tail(out.String()))
	}
	changed := 0
	for _, m := range recapChanged.FindAllStringSubmatch(out.String(), -1) {
		n, _ := strconv.Atoi(m[1])
		changed += n
	}
	if changed > 0 {
		return 0, fmt.Errorf("the playbook changed %d things on hosts kprep converged: it does not hold them to kprep's state\n%s", changed, tail(out.String()))
	}
	return cpuOf(cmd.ProcessState), nil
}

// close ends what this bench's Ansible left running (the ControlPersist
// masters, and the workers of a cancelled run), found by the bench's own
// folder in their command lines and ended by PID, and removes the folder.
func (a *ansible) close() {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && pid != os.Getpid() && bytes.Contains(cmdline, []byte(a.dir)) {
			_ = syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	_ = os.RemoveAll(a.dir)
}
