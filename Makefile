# The two commands a new user needs:
#   make demo   the main job
#   make test   the whole test suite (vet, staticcheck, tests on both backends)
GO ?= go
BIN := bin/simclr
STATICCHECK_VERSION := v0.8.2

.PHONY: demo test deps build lint test-go test-purego bench clean

deps:
	@scripts/install-deps.sh

build: deps
	$(GO) build -o $(BIN) ./cmd/simclr

demo: build
	./$(BIN) version

test: deps lint test-go test-purego

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
