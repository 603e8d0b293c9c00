SHELL := /bin/bash
GO ?= go
BIN := bin/kubeplay

.PHONY: all build test unit lint fmt vet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/kubeplay

## test: the README's test command: lint, then every test with the race detector
test: lint
	$(GO) test -race -count=1 ./...

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
