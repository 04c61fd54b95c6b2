# l2agent — see README.md. The two commands: `make run` and `make test`.
GO        ?= go
BIN       ?= bin/l2agent
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/l2agent/l2agent/agent.Version=$(VERSION)
RUN_ARGS  ?=
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build run test test-env unit lint bench fuzz soak package image clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/l2agent

## run: the agent with its embedded default config on http://127.0.0.1:10061
run:
	$(GO) run ./cmd/l2agent run $(RUN_ARGS)

## test: installs the real components the tests use (Debian packages), then
## vet, staticcheck and every test, with the race detector.
test: test-env lint unit

test-env:
	bash deploy/testenv/install.sh core mfa patches patches-rpm antivirus alertmanager ansible packaging systemd image
	bash deploy/testenv/rt.sh --prepare
	bash deploy/testenv/systemd.sh prepare

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

unit:
	$(GO) test -race -count=1 -timeout 20m ./...

## fuzz: a short run of every fuzz target (FUZZTIME=30s by default)
FUZZTIME ?= 30s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

## soak: the full soak test (TestSoak with L2AGENT_SOAK=full): 200 kill -9s, 20 graceful
## restarts, 2 RT outages of 2 minutes, a 429 storm and reloads against a real Request
## Tracker; about an hour. `make test` runs its short version.
soak: test-env
	L2AGENT_SOAK=full $(GO) test -count=1 -timeout 3h -run '^TestSoak$$' -v ./cmd/l2agent/

## bench: Go benchmarks, the cost of one run of each check (checkcost), then the agent side by
## side with prometheus-node-exporter, zabbix-agent2 and a bare client_golang process (bench.sh;
## BENCH_IDLE_SECONDS, default 300, is the idle window), 10,000 simulated agents into a real
## 2-node Alertmanager cluster (fleet.sh), then breach → ticket in a real RT while the rest of
## the test suite runs (rtlatency.sh, RTLAT_RUNS runs). Numbers are printed, never asserted.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./agent/ ./checks/disk/
	bash deploy/testenv/install.sh bench
	$(GO) run ./deploy/testenv/checkcost
	bash deploy/testenv/bench.sh
	bash deploy/testenv/fleet.sh
	bash deploy/testenv/rtlatency.sh

clean:
	rm -rf bin

## image: the container image as an OCI archive, bin/l2agent-image.tar, tagged as
## deploy/kubernetes/daemonset.yaml says; no container daemon or registry needed
## (deploy/container/README.md). The Debian base is made once with mmdebstrap (root) and cached.
IMAGE_ARCHIVE ?= bin/l2agent-image.tar
image: build
	bash deploy/testenv/install.sh image
	SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || echo 0) $(GO) run ./deploy/container/build -o $(IMAGE_ARCHIVE)

## package: .deb and .rpm (nfpm, run as a Go tool) into bin/. The package version is
## VERSION=… when given, else one from git (deploy/packaging/version.sh), never the raw
## `git describe` of `make build`, which dpkg may refuse or sort above every release.
package:
	$(if $(filter command line environment,$(origin VERSION)),VERSION=$(VERSION)) sh deploy/packaging/build.sh bin
