GO      ?= go
BIN     := bin/faultline
LISTEN  ?= 127.0.0.1:7470

.PHONY: run test bench fuzz lint build clean soak matrix

## run: start the proxy in front of its built-in echo upstream (Ctrl-C stops it)
run: build
	./$(BIN) demo --listen $(LISTEN)

## build: build bin/faultline
build:
	$(GO) build -o $(BIN) ./cmd/faultline

## test: every test with the race detector (leak checks are part of the tests)
test: lint
	$(GO) test -race -count=1 -timeout 10m ./...

## bench: Go benchmarks, then the relay benchmark table (its targets include AddFault's p99 from BenchmarkAddFault1000)
bench: build
	$(GO) test -run '^$$' -bench . -skip 'AddFault1000' -benchmem -count 1 ./proxy/
	$(GO) test -run '^$$' -bench 'AddFault1000' -benchtime 300x -count 1 ./proxy/ > bin/addfault-bench.txt || { cat bin/addfault-bench.txt; exit 1; }
	cat bin/addfault-bench.txt
	$(GO) run ./cmd/relaybench -faultline ./$(BIN) -gobench bin/addfault-bench.txt

## soak: the chaos soak at full size, 1 to 1.5 minutes on 2 CPUs (make test runs a 2,000-connection one); SOAKFLAGS=-seed 7 etc.
SOAKFLAGS ?=
# (its whole report is also kept in bin/soak-last.txt, so a failure's details survive a filtered terminal)
soak: SHELL := /bin/bash
soak: build
	set -o pipefail; $(GO) run ./cmd/soak -faultline ./$(BIN) $(SOAKFLAGS) 2>&1 | tee bin/soak-last.txt

## matrix: run the client matrix against the real servers (.ci/servers) and rewrite docs/clients.md's table from it
matrix:
	FAULTLINE_MATRIX_WRITE=1 FAULTLINE_E2E_REQUIRE=1 $(GO) test -count=1 -timeout 10m ./e2e/ -ginkgo.label-filter=matrix

## fuzz: each fuzz target for FUZZTIME (make test runs only their seeds)
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzFaultJSON$$' -fuzztime $(FUZZTIME) ./faults/
	$(GO) test -run '^$$' -fuzz '^FuzzRequestBodies$$' -fuzztime $(FUZZTIME) ./control/
	$(GO) test -run '^$$' -fuzz '^FuzzWSRequests$$' -fuzztime $(FUZZTIME) ./control/
	$(GO) test -run '^$$' -fuzz '^FuzzLoadConfig$$' -fuzztime $(FUZZTIME) ./cmd/faultline/
	$(GO) test -run '^$$' -fuzz '^FuzzFaultSequence$$' -fuzztime $(FUZZTIME) ./proxy/
	$(GO) test -run '^$$' -fuzz '^FuzzToxicBodies$$' -fuzztime $(FUZZTIME) ./control/toxiproxy/
	$(GO) test -run '^$$' -fuzz '^FuzzCheck$$' -fuzztime $(FUZZTIME) ./internal/strictjson/

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

clean:
	rm -rf bin
