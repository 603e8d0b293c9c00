SHELL := /bin/bash
GO ?= go
BIN := bin/kubeplay

.PHONY: all build test unit lint fmt vet clean lab-up lab-down lab-env lab-status deps demo

all: build

build:
	$(GO) build -o $(BIN) ./cmd/kubeplay

## test: the README's test command: lint, bring up the lab (root; cached
## builds), then every test with the race detector
test: lint lab-up
	$(GO) test -race -count=1 -timeout 30m ./...

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

## demo: bring up the lab and run a bundled playbook against it over SSH.
## (The bundled kubeadm-upgrade becomes the demo when its modules land.)
demo: build lab-up
	@eval "$$($(GO) run ./test/lab/cmd/lab env)"; \
	  bin/kubeplay run audit-runtime-endpoint -e expect=unix:///run/containerd/containerd.sock && \
	  echo && $$LAB_KUBECTL get nodes -o wide
