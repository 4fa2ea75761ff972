# Gantry. `make demo` shows the whole product; `make run` starts one dev
# agent; `make test` is what CI runs.
GO      ?= go
BIN     ?= bin/gantry
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build test test-integration bench bench-go run demo soak fuzz clean

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o $(BIN) .

test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 15m ./...

# Real programs: an agent built as the Dockerfile builds it, scraped by
# Prometheus (Debian package prometheus), and spans sent to Jaeger
# (GANTRY_JAEGER=path; build it with: go build -C tools -o bin/jaeger
# github.com/jaegertracing/jaeger/cmd/jaeger). .ci/run provides both.
test-integration:
	$(GO) vet -tags integration ./deploy/ ./telemetry/
	$(GO) test -tags integration -count=1 -timeout 10m ./deploy/ ./telemetry/

run: build
	$(BIN) agent --dev

# Three agents, simulated users and the console on them; --headless with
# DEMO_FLAGS=--headless.
demo: build
	$(BIN) demo $(DEMO_FLAGS)

# The demo under load: SOAK_MINUTES (10) at SOAK_RATE calls/s (40).
soak: build
	./bench/soak.sh

# The load run side by side: direct, a bare reverse-proxy hop, the gateway.
bench: build
	./bench/gateway.sh

# The Go benchmarks, with allocations per operation.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./pipeline/...

fuzz:
	./bench/fuzz.sh

clean:
	rm -rf bin
