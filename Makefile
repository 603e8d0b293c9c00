SHELL := /bin/bash
GO ?= go
BIN := bin/kubeplay

.PHONY: all build test unit lint fmt vet clean lab-up lab-down lab-env lab-status deps demo bench docs

all: build

# the version and commit `kubeplay version` prints
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X main.stampedVersion=$(VERSION) -X main.stampedCommit=$(COMMIT)

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/kubeplay

## test: the README's test command: lint, the lab, every test with the
## race detector, then test/upgrade alone and last; ends with a table of
## every phase's time (test/run-tests.sh says why it runs that way).
test:
	@bash test/run-tests.sh

## docs: regenerate docs/modules.md and docs/cli.md (a test fails when they are stale)
docs:
	KUBEPLAY_INVENTORY= KUBEPLAY_KNOWN_HOSTS= XDG_STATE_HOME= $(GO) run ./cmd/kubeplay gen-docs docs

unit:
	$(GO) test -count=1 ./...

lint: fmt vet

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

clean:
	rm -rf bin

## deps: Debian packages the lab and tests need (idempotent; run as root)
deps:
	@bash test/lab/scripts/install-deps.sh

## lab-up: start the lab (nodes with sshd; idempotent, reuses a running lab)
lab-up: deps
	$(GO) run ./test/lab/cmd/lab up

## lab-down: remove every netns, link, mount and process the lab created
lab-down:
	$(GO) run ./test/lab/cmd/lab down

## lab-env: print export lines pointing kubectl, ssh and kubeplay at the lab
lab-env:
	@$(GO) run ./test/lab/cmd/lab env

lab-status:
	@$(GO) run ./test/lab/cmd/lab status

## demo: the main job. Bring up the lab and run the bundled kubeadm-upgrade
## against it over SSH (v1.36 -> v1.37; on a lab already upgraded it
## converges without touching a node), then show the nodes.
## bench: kubeplay against the SSH floor, Ansible and kubectl drain on the lab (BENCHMARKS.md); BENCH_ARGS="-what scale" picks
bench: build
	$(GO) run ./test/bench $(BENCH_ARGS)

demo: build lab-up
	@eval "$$($(GO) run ./test/lab/cmd/lab env)"; \
	  $$LAB_KUBECTL get nodes && echo && \
	  bin/kubeplay run kubeadm-upgrade -e version=$$LAB_UPGRADE_VERSION && \
	  echo && $$LAB_KUBECTL get nodes -o wide
