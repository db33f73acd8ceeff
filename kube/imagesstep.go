package kube

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/kprep/kprep/kube/images"
	"github.com/kprep/kprep/provision"
	"github.com/kprep/kprep/provision/inventory"
	"github.com/kprep/kprep/provision/shell"
	"github.com/kprep/kprep/runtime"
)

// ImagesStep stops the kube phase on a host before anything is installed
// or pulled there when the registry lacks an image the host will need
// for its platform (an arm64 host and an index with linux/amd64 only, the
// failure users of offline bundles meet at kubeadm init or in a
// crash-looping DaemonSet), or lacks the image, or cannot be reached. It
// asks from the host itself, in the probe, because the registry may be
// reachable from the hosts only: one manifest request per image (a GET:
// the index or manifest; a single image's config blob too, for its
// platform), never a layer. The registry is asked as the host's runtime
// would ask it: Docker Hub images through docker.registryMirrors first,
// docker.insecureRegistries over HTTPS without verification then plain
// HTTP, through docker.proxy. An image the runtime already holds complete
// for the host's platform is not asked about, so a converged host makes
// no request at all.
type ImagesStep struct{}

// Name implements provision.Step.
func (ImagesStep) Name() string { return "kube/images" }

// ProbedOnce implements provision.ProbedOnce: the registry's answer does
// not change with what earlier steps do on the host, so apply asks once,
// not again after each step that changed something.
func (ImagesStep) ProbedOnce() bool { return true }

// imageProbeTimeouts bound each request: a registry that does not answer
// costs its connect time once per probe (later requests to it are
// skipped), one that answers slowly its max time per image.
const (
	imageConnectTimeout = 5
	imageMaxTime        = 30
)

// imagesProbeFuncs are the probe's shell functions. kprep_img_get URL SKIP
// [HEADER] makes one GET (curl, or wget) with the manifest Accept header
// and prints its HTTP status (000: no answer); the body is in $d/b, the
// headers in $d/h, the error in $d/e. kprep_img_try N M MANIFEST BLOBS
// SKIP REPO HOST asks endpoint M for image N's manifest (a bearer token first when
// the registry asks for one, as containerd does for anonymous pulls),
// then the config of a single image, and prints what it got; it returns 0
// when the registry had the manifest.
const imagesProbeFuncs = `d=$(mktemp -d) || exit 1
trap 'rm -rf "$d"' EXIT
if command -v curl >/dev/null 2>&1; then tool=curl; elif command -v wget >/dev/null 2>&1; then tool=wget; else tool=none; fi
echo "tool=$tool"
down=' '
kprep_img_get() {
  rm -f "$d/b" "$d/h" "$d/e"
  case $tool in
  curl)
    curl -sS -L --connect-timeout %[1]d --max-time %[2]d ${2:+-k} -H "Accept: $accept" ${3:+-H "$3"} -D "$d/h" -o "$d/b" -w '%%{http_code}' "$1" 2>"$d/e" ;;
  wget)
    wget -S -T %[2]d -t 1 ${2:+--no-check-certificate} --header="Accept: $accept" ${3:+--header="$3"} -O "$d/b" "$1" 2>"$d/h"
    s=$(sed -n 's/^ *HTTP\/[0-9.]* \([0-9][0-9][0-9]\).*/\1/p' "$d/h" | tail -n1)
    if [ -z "$s" ]; then tail -n2 "$d/h" >"$d/e"; s=000; fi
    echo "$s" ;;
  esac
}
kprep_img_token() {
  c=$(tr -d '\r' <"$d/h" | sed -n 's/^[Ww][Ww][Ww]-[Aa]uthenticate: *[Bb]earer *//p' | tail -n1)
  realm=$(printf '%%s' "$c" | sed -n 's/.*realm="\([^"]*\)".*/\1/p')
  [ -n "$realm" ] || return 0
  service=$(printf '%%s' "$c" | sed -n 's/.*service="\([^"]*\)".*/\1/p')
  scope=$(printf '%%s' "$c" | sed -n 's/.*scope="\([^"]*\)".*/\1/p')
  [ -n "$scope" ] || scope="repository:$2:pull"
  case $realm in *\?*) u="$realm&scope=$scope" ;; *) u="$realm?scope=$scope" ;; esac
  [ -z "$service" ] || u="$u&service=$service"
  s=$(kprep_img_get "$u" "$1")
  [ "$s" = 200 ] || return 0
  t=$(tr -d ' \n\r\t' <"$d/b" | sed -n 's/.*"\(access_\)\{0,1\}token":"\([^"]*\)".*/\2/p')
  [ -z "$t" ] || printf 'Authorization: Bearer %%s' "$t"
}
kprep_img_try() {
  case $down in *" $7 "*) echo "img.$1.$2=skip"; return 1 ;; esac
  if [ "$tool" = none ]; then echo "img.$1.$2=notool"; return 1; fi
  s=$(kprep_img_get "$3" "$5")
  auth=
  if [ "$s" = 401 ]; then
    auth=$(kprep_img_token "$5" "$6")
    [ -z "$auth" ] || s=$(kprep_img_get "$3" "$5" "$auth")
  fi
  ct=$(tr -d '\r' <"$d/h" 2>/dev/null | sed -n 's/^[Cc]ontent-[Tt]ype: *//p' | tail -n1)
  echo "img.$1.$2=$s $ct"
  if [ "$s" = 000 ]; then
    down="$down$7 "
    printf 'img.%%s.%%s.err=%%s\n' "$1" "$2" "$(tr '\n' ' ' <"$d/e" 2>/dev/null)"
    return 1
  fi
  [ "$s" = 200 ] || return 1
  printf 'file img.%%s.%%s.manifest %%s\n' "$1" "$2" "$(base64 -w0 <"$d/b")"
  flat=$(tr -d ' \n\r\t' <"$d/b")
  case $flat in *'"manifests":['*) return 0 ;; esac
  cfg=$(printf '%%s' "$flat" | sed -n 's/.*"config":{[^}]*"digest":"\(sha256:[0-9a-f]*\)".*/\1/p')
  [ -n "$cfg" ] || return 0
  s=$(kprep_img_get "$4$cfg" "$5" "$auth")
  echo "img.$1.$2.config=$s"
  [ "$s" != 200 ] || printf 'file img.%%s.%%s.config %%s\n' "$1" "$2" "$(base64 -w0 <"$d/b")"
  return 0
}`

// imagesPresentContainerd lists the images containerd's CRI namespace holds
// complete for this host's platform (`ctr images check` judges the
// default platform: the host's).
const imagesPresentContainerd = `have=
sock=/run/containerd/containerd.sock
if command -v ctr >/dev/null 2>&1 && [ -S "$sock" ]; then
  have=$(timeout 30 ctr -a "$sock" -n k8s.io images check 2>/dev/null | awk 'NR > 1 && $4 == "complete" {print $1}')
fi
kprep_img_present() { printf '%s\n' "$have" | grep -qxF -- "$1"; }`

// imagesPresentDocker asks dockerd (cri-dockerd pulls through it) whether
// it holds the image for this host's platform.
const imagesPresentDocker = `case $(uname -m) in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch=$(uname -m) ;; esac
kprep_img_present() {
  command -v docker >/dev/null 2>&1 && [ "$(timeout 10 docker image inspect -f '{{.Os}}/{{.Architecture}}' "$1" 2>/dev/null)" = "linux/$arch" ]
}`

// imageCheck is one image the step asks about, with where the runtime
// would pull it from.
type imageCheck struct {
	images.Need
	Ref       images.Ref
	Endpoints []images.Endpoint
	// Err is set when the reference does not parse.
	Err error
}

// imageChecks lists the images h needs, in the probe's order.
func imageChecks(h *inventory.Host, c *inventory.Cluster) ([]imageCheck, []string) {
	needs, unknown := images.Needed(c, h)
	out := make([]imageCheck, len(needs))
	for i, n := range needs {
		out[i].Need = n
		r, err := images.ParseRef(n.Image)
		if err != nil {
			out[i].Err = err
			continue
		}
		out[i].Ref, out[i].Endpoints = r, images.Endpoints(r, c)
	}
	return out, unknown
}

// Probe asks, for each image h needs that its runtime does not hold yet,
// the registry (or the mirrors before it) for the image's manifest.
func (ImagesStep) Probe(h *inventory.Host, c *inventory.Cluster) string {
	checks, _ := imageChecks(h, c)
	var b strings.Builder
	for _, kv := range runtime.ProxyEnv(c) {
		// Both cases: curl reads http_proxy only in lower case, wget reads
		// every one in lower case.
		fmt.Fprintf(&b, "%s=%s; %s=%[2]s; export %[1]s %[3]s\n", kv[0], shell.Quote(kv[1]), strings.ToLower(kv[0]))
	}
	fmt.Fprintf(&b, "accept=%s\n", shell.Quote(images.Accept))
	fmt.Fprintf(&b, imagesProbeFuncs+"\n", imageConnectTimeout, imageMaxTime)
	present, name := imagesPresentContainerd, func(r images.Ref) string { return r.String() }
	if c.Kubernetes.CRI == "cri-dockerd" {
		present, name = imagesPresentDocker, images.Ref.DockerName
	}
	b.WriteString(present + "\n")
	for i, ic := range checks {
		if ic.Err != nil {
			continue
		}
		fmt.Fprintf(&b, "if kprep_img_present %s; then echo img.%d.present=1\n", shell.Quote(name(ic.Ref)), i)
		for m, e := range ic.Endpoints {
			skip := ""
			if e.SkipVerify {
				skip = "1"
			}
			fmt.Fprintf(&b, "elif kprep_img_try %d %d %s %s '%s' %s %s; then :\n", i, m,
				shell.Quote(e.ManifestURL(ic.Ref)), shell.Quote(e.BlobsURL(ic.Ref)), skip, shell.Quote(ic.Ref.Repository), shell.Quote(e.Host()))
		}
		b.WriteString("fi\n")
	}
	b.WriteString("exit 0")
	return b.String()
}

// imageVerdict is what the probe found of one image.
type imageVerdict struct {
	// Problem says why the host cannot pull it ("" when it can).
	Problem string
	// Warning says why it was not checked.
	Warning string
}

// judgeImage reads image i's answers: the first endpoint that had the
// manifest decides, as in the runtime; when none had it, every answer is
// told.
func judgeImage(st shell.State, i int, ic imageCheck, arch string) imageVerdict {
	if ic.Err != nil {
		return imageVerdict{Problem: ic.Err.Error()}
	}
	key := "img." + strconv.Itoa(i)
	if st.Values[key+".present"] == "1" {
		return imageVerdict{}
	}
	var tried []string
	last := ""
	for m, e := range ic.Endpoints {
		k := key + "." + strconv.Itoa(m)
		answer, ok := st.Values[k]
		if !ok {
			break
		}
		status, contentType, _ := strings.Cut(answer, " ")
		last = status
		switch status {
		case "200":
			return judgeManifest(st, k, contentType, arch)
		case "notool":
			return imageVerdict{Warning: "not checked: the host has neither curl nor wget to ask the registry"}
		case "skip":
			tried = append(tried, e.Host()+" did not answer (see above)")
		case "000":
			tried = append(tried, e.Host()+" did not answer: "+strings.TrimSpace(st.Values[k+".err"]))
		case "401", "403":
			tried = append(tried, e.Host()+" wants credentials (HTTP "+status+")")
		case "404":
			tried = append(tried, e.Host()+" has no "+ic.Ref.ManifestRef()+" of "+ic.Ref.Repository+" (HTTP 404)")
		default:
			tried = append(tried, e.Host()+" answered HTTP "+status)
		}
	}
	if len(tried) == 0 {
		return imageVerdict{Problem: "the probe printed nothing about it (was it cut short?)"}
	}
	if last == "401" || last == "403" {
		// kprep configures no registry credentials, but the runtime may
		// have some of its own: not an error.
		return imageVerdict{Warning: "not checked: " + strings.Join(tried, "; ")}
	}
	return imageVerdict{Problem: strings.Join(tried, "; ")}
}

// judgeManifest reads the manifest (and a single image's config) an
// endpoint answered with.
func judgeManifest(st shell.State, k, contentType, arch string) imageVerdict {
	body, _ := st.File(k + ".manifest")
	m, err := images.ParseManifest(contentType, body)
	if err != nil {
		return imageVerdict{Problem: err.Error()}
	}
	if m.Index {
		if m.HasPlatform(arch) {
			return imageVerdict{}
		}
		return imageVerdict{Problem: fmt.Sprintf("its index has no linux/%s image, only %s", arch, m.PlatformList())}
	}
	cfg, ok := st.File(k + ".config")
	if !ok {
		return imageVerdict{Problem: fmt.Sprintf("it is a single image whose config (%s) the registry did not serve (HTTP %s), so its platform is unknown", m.Config, st.Values[k+".config"])}
	}
	p, err := images.ParseConfig(cfg)
	if err != nil {
		return imageVerdict{Problem: err.Error()}
	}
	if !p.Runs(arch) {
		return imageVerdict{Problem: fmt.Sprintf("it is a single image for %s, not linux/%s", p, arch)}
	}
	return imageVerdict{}
}

// Diff implements provision.Step: an image the host cannot pull fails the
// step, so nothing of the kube phase runs on the host.
func (s ImagesStep) Diff(in provision.Input) ([]provision.Planned[struct{}], error) {
	problems, _, err := s.judge(in)
	if err != nil {
		return nil, err
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s (%s, linux/%s) cannot pull %d of the images it needs; the kube phase stops here on this host, before it installs or pulls anything:\n%s",
			in.Host.Name, in.Facts.Arch, in.Facts.GoArch(), len(problems), strings.Join(problems, "\n"))
	}
	return nil, nil
}

// Warnings implements provision.Warner: images that could not be checked.
func (s ImagesStep) Warnings(in provision.Input) []string {
	_, warnings, _ := s.judge(in)
	return warnings
}

func (ImagesStep) judge(in provision.Input) (problems, warnings []string, err error) {
	st, err := shell.Parse(in.State)
	if err != nil {
		return nil, nil, err
	}
	checks, unknown := imageChecks(in.Host, in.Cluster)
	warnings = append(warnings, unknown...)
	arch := in.Facts.GoArch()
	for i, ic := range checks {
		v := judgeImage(st, i, ic, arch)
		if v.Problem != "" {
			problems = append(problems, fmt.Sprintf("- %s (%s): %s", ic.Image, ic.Why, v.Problem))
		}
		if v.Warning != "" {
			warnings = append(warnings, fmt.Sprintf("%s (%s): %s", ic.Image, ic.Why, v.Warning))
		}
	}
	return problems, warnings, nil
}

// Apply never runs: Diff returns no change.
func (ImagesStep) Apply(context.Context, provision.Target, provision.Input, []provision.Planned[struct{}]) error {
	return errors.New("kube/images has nothing to apply")
}
