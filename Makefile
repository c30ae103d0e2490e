# kinko's two commands: `make dev` runs the main job, `make test` passes
# every test. Go 1.26.8 with GOTOOLCHAIN=local is all a fresh machine needs;
# the test target installs what the tests need (btcd and geth are built
# through go.mod's tool directive, the Safe contracts come from npm,
# Chromium from Debian's packages).
export GOTOOLCHAIN := local
GO ?= go
# ARGS are passed to kinko dev: make dev ARGS="--data /tmp/k --addr 127.0.0.1:9000"
ARGS ?=

.PHONY: dev test deps bench fuzz

dev:
	$(GO) run ./cmd/kinko dev $(ARGS)

deps:
	bash scripts/install-test-deps.sh

# The integration tests (./itest/, the roles as separate processes: the
# longest package by far) are named first so that they start first and
# the other packages run beside them instead of before them; the core's
# and the ledger's tests built with their invariant checks (-tags
# invariants) run beside them too, their output printed after. Either
# failing fails the target.
test: deps
	$(GO) vet ./...
	@inv=$$(mktemp); \
	$(GO) test -count=1 -timeout 10m -short -tags invariants ./internal/core/ ./internal/ledger/ >$$inv 2>&1 & pid=$$!; \
	$(GO) test -count=1 -timeout 15m ./itest/ ./...; st=$$?; \
	wait $$pid; ist=$$?; \
	echo "go test -count=1 -timeout 10m -short -tags invariants ./internal/core/ ./internal/ledger/"; cat $$inv; rm -f $$inv; \
	test $$st -eq 0 && test $$ist -eq 0

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...
