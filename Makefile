# Gantry. `make run` starts a dev agent; `make test` is what CI runs.
GO      ?= go
BIN     ?= bin/gantry
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build test bench run fuzz clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) .

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

run: build
	$(BIN) agent --dev

bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./pipeline/...
	./bench/gateway.sh

fuzz:
	./bench/fuzz.sh

clean:
	rm -rf bin
