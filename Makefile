# Gantry's everyday commands. The README's two commands are the entry points:
# `go run ./cmd/gantry demo` and `./scripts/test.sh`.
GO ?= go
BIN ?= bin/gantry
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)

.PHONY: build test lint bench demo clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-X github.com/gantry-dev/gantry.Version=$(VERSION)" -o $(BIN) ./cmd/gantry

test:
	./scripts/test.sh

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) tool staticcheck ./...

bench:
	./bench/proxy/run.sh

demo:
	$(GO) run ./cmd/gantry demo

clean:
	rm -rf bin .gantry
