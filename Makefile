# The two commands a new user needs:
#   make demo   the main job
#   make test   the whole test suite (vet, staticcheck, tests on both backends,
#               data-parallel tests under mpirun)
GO ?= go
BIN := bin/simclr
STATICCHECK_VERSION := v0.8.2

.PHONY: demo test deps build lint test-go test-purego bench clean build-mpi lint-mpi test-mpi

deps:
	@scripts/install-deps.sh

build: deps
	$(GO) build -o $(BIN) ./cmd/simclr

demo: build
	./$(BIN) demo

test: deps lint test-go test-purego test-mpi

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { gofmt -l .; echo "gofmt: files above need formatting"; exit 1; }
	$(GO) vet ./...
	CGO_ENABLED=0 $(GO) vet ./...
	@command -v staticcheck >/dev/null || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck ./...

test-go:
	$(GO) test -count=1 -timeout 20m ./...

# The same suite without cgo: the pure-Go backend alone.
test-purego:
	CGO_ENABLED=0 $(GO) build ./...
	CGO_ENABLED=0 $(GO) test -count=1 -timeout 20m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 3x ./...

clean:
	rm -rf bin

# Data-parallel training over MPI (Open MPI: libopenmpi-dev openmpi-bin).
# bin/simclr-mpi is bin/simclr plus MPI; run it under mpirun.
build-mpi:
	@scripts/install-deps.sh libopenmpi-dev openmpi-bin
	$(GO) build -tags mpi -o bin/simclr-mpi ./cmd/simclr

lint-mpi:
	$(GO) vet -tags mpi ./...
	PATH="$$PATH:$$($(GO) env GOPATH)/bin" staticcheck -tags mpi ./...

test-mpi: lint-mpi
	@scripts/install-deps.sh libopenmpi-dev openmpi-bin pkg-config
	scripts/test-mpi.sh
