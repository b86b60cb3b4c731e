# The two commands a new user needs:
#   make demo   the main job
#   make test   the whole test suite (vet, staticcheck, tests on both backends,
#               data-parallel tests under mpirun)
GO ?= go
BIN := bin/simclr
STATICCHECK_VERSION := v0.8.2

.PHONY: demo test deps build lint test-go test-purego bench clean build-mpi lint-mpi test-mpi test-multihost onnx-deps

deps:
	@scripts/install-deps.sh

build: deps
	$(GO) build -o $(BIN) ./cmd/simclr

demo: build
	./$(BIN) demo

test: deps lint test-go test-purego test-mpi test-multihost fuzz

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

# Each fuzz target for a few seconds (about a minute in all); plain go test
# already runs their seed corpora (testdata/fuzz). The budgets are counts of
# executions, each a few seconds on an idle 2-core machine: Go 1.26's fuzzing
# coordinator can fail a wall-clock budget (-fuzztime 5s) with a bare
# "context deadline exceeded" when a loaded machine's worker is mid-input at the
# deadline (go.dev/issue/75804); a count has no deadline to race. For a longer
# search, or one wall-clock budget for every target:
#   go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 10m ./checkpoint
#   make fuzz FUZZTIME=1m
FUZZTIME ?=
FUZZ_TARGETS := checkpoint:FuzzParse:20000x npy:FuzzRead:40000x \
	simclr:FuzzLoadModel:3000x data:FuzzReadIDX:4000x data:FuzzCIFARArchive:2000x \
	data:FuzzCIFARBatch:2000x data:FuzzSTL10:2000x data:FuzzOpenImageFolderTar:3000x \
	train:FuzzResume:2000x cmd/simclr:FuzzConfigFile:3000x cmd/simclr:FuzzLabelsFile:2000x \
	report/tfevents:FuzzRead:100000x
.PHONY: fuzz
fuzz: deps
	@set -e; for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; budget=$${FUZZTIME:-$${rest#*:}}; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name$$' -fuzztime $$budget ./$$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $$budget ./$$pkg; \
	done

# The ONNX export tests run the exported models in onnxruntime (npm's
# onnxruntime-node under Debian's Node.js) and onnx.checker (python3-onnx);
# the model-file tests load our files into torchvision (python3-torch).
# Under make they fail rather than skip when those are missing.
ONNX_CHECK := scripts/onnx-check
test-go test-purego: onnx-deps torch-deps
test-go test-purego: export SIMCLR_ONNX_REQUIRED = 1
test-go test-purego: export SIMCLR_TORCH_REQUIRED = 1

onnx-deps: $(ONNX_CHECK)/node_modules/.package-lock.json
	@scripts/install-deps.sh python3-onnx

.PHONY: torch-deps
torch-deps:
	@scripts/install-deps.sh python3-torch python3-torchvision python3-numpy

# npm ci only when the lock file changed; --ignore-scripts: the CPU
# binaries are in the package, its install script only fetches GPU ones.
$(ONNX_CHECK)/node_modules/.package-lock.json: $(ONNX_CHECK)/package-lock.json
	@command -v npm >/dev/null || scripts/install-deps.sh nodejs npm
	cd $(ONNX_CHECK) && npm ci --ignore-scripts --no-audit --no-fund
	@touch $@

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

# The same across two hosts: network namespaces joined by a veth pair
# (needs root; skipped otherwise).
test-multihost: lint-mpi
	@if [ "$$(id -u)" = 0 ]; then scripts/install-deps.sh libopenmpi-dev openmpi-bin pkg-config iproute2; fi
	scripts/test-multihost.sh
