# kprep: build, test and the lab. `make help` lists the targets.
GO        ?= go
BIN       := bin/kprep
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT    ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS   := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
LAB       := $(GO) run ./test/lab
STATICCHECK_VERSION ?= v0.8.2

.PHONY: help build test unit lint bench bench-lab bench-scale fuzz kubeadm-check e2e e2e-ha e2e-kunpeng lab-arm64-deps lab-up lab-down lab-status demo ci clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build bin/kprep
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/kprep

test: lint unit ## lint and unit tests (fast; the SSH tests need root and sshd, and skip without them)

unit: ## unit tests with the race detector
	$(GO) test -race -count=1 ./...

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	@command -v staticcheck >/dev/null 2>&1 || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck ./...

bench: ## benchmarks: round trips per host, SSH throughput
	$(GO) test -run '^$$' -bench . -benchmem ./provision/...

fuzz: ## fuzz the inventory loader for a minute
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime 60s ./provision/inventory

# Built like the lab's kubeadm (CGO off, -trimpath), so the two share the
# compiled Kubernetes packages in the Go build cache.
kubeadm-check: ## the real kubeadm (v1.34.4, in process) validates every golden kubeadm config kprep renders
	cd test/kubebuild && CGO_ENABLED=0 GOWORK=off $(GO) test -trimpath -count=1 ./kubeadmcheck

e2e: build ## the lab's own tests and the end-to-end suites on it (root; builds the lab on first use)
	cd test/kubebuild && $(GO) test -count=1 ./cmd/lab-crictl
	KPREP_LAB=1 $(GO) test -count=1 -timeout 60m ./test/lab/...
	KPREP_E2E=1 KPREP_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 80m -v ./test/e2e/...

# Opt-in, not in `make ci`: a second cluster (three control planes and a
# worker in local mode) costs 10 to 20 minutes on 2 cores, which the cold
# CI run cannot spare beside the image builds and TestKubeCluster.
e2e-ha: build ## the HA suite: 3 control planes and a worker in local mode, the proxy, kubeconfig, reset (root)
	KPREP_E2E=1 KPREP_HA=1 KPREP_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 60m -v -run 'TestKubeHA$$' ./test/e2e/

# Opt-in, not in `make ci`: the aarch64 VM image's first build runs
# debootstrap and apt under qemu-user (test/lab/README.md has the times).
e2e-kunpeng: build lab-arm64-deps ## the Kunpeng suite on the lab's aarch64 VM host (root; KPREP_LAB_ID picks the lab)
	KPREP_E2E=1 KPREP_KUNPENG=1 KPREP_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 150m -v -run Kunpeng ./test/e2e/

lab-arm64-deps: ## machine packages for the lab's aarch64 VM host: QEMU, qemu-user, Debian's arm64 package lists (root)
	dpkg --add-architecture arm64
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-arm qemu-user-static e2fsprogs debootstrap >/dev/null

bench-lab: build ## round trips and time of a plan on converged lab hosts (a running lab: make lab-up)
	KPREP_E2E=1 $(GO) test -run '^$$' -bench PlanConvergedHosts ./test/e2e/

# bench-scale is not part of ci: at 50 hosts it takes far longer than CI's
# budget. BENCH_N lists the host counts (the lab boots up to 200); at 200
# the runtime phase's first installs and each Ansible round are tens of
# minutes of two cores (README, Speed): BENCH_PHASES=hostprep and
# BENCH_ANSIBLE=false make such a run fit.
BENCH_N    ?= 3 50
BENCH_RUNS ?= 5
BENCH_JSON ?= /tmp/kprep-bench-scale.json
BENCH_PHASES ?= hostprep,runtime
BENCH_ANSIBLE ?= true
bench-scale: build ## kprep against the parallel ssh floor and an Ansible playbook on N converged lab hosts, probe cost per step (root; BENCH_N="3 50 200")
	$(GO) run ./test/bench -n "$(BENCH_N)" -runs $(BENCH_RUNS) -phases $(BENCH_PHASES) -ansible=$(BENCH_ANSIBLE) -json $(BENCH_JSON) -kprep $(BIN)

lab-up: ## bring up the lab's hosts and print their inventory (root; KPREP_LAB_ID=N picks the lab instance, default 0)
	$(LAB) up

lab-down: ## remove every host, link, mount and process of the lab instance KPREP_LAB_ID (default 0) (root)
	$(LAB) down

lab-status: ## show the hosts of the lab instance KPREP_LAB_ID (default 0)
	$(LAB) status

demo: build ## lab up (or the running one), kprep apply on it (a Kubernetes cluster), plan to show nothing is left, then the cluster's nodes and pods (root)
	@$(LAB) status >/dev/null 2>&1 || $(LAB) up
	@set -e; inv=$$($(LAB) inventory); export KPREP_LAB_SUDO_PASSWORD=$$($(LAB) sudo-password); \
	$(BIN) apply -i $$inv; $(BIN) plan -i $$inv; \
	$(LAB) exec lab1 -- kubectl --kubeconfig /etc/kubernetes/admin.conf get nodes -o wide; \
	$(LAB) exec lab1 -- kubectl --kubeconfig /etc/kubernetes/admin.conf get pods -A -o wide

ci: test kubeadm-check e2e ## what CI runs

clean:
	rm -rf bin
