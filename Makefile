# The two commands of the README:
#   make run    set up and run HMP on its embedded default
#   make test   set up and run the whole test suite
GO ?= go
STATICCHECK_VERSION ?= v0.8.2

.PHONY: run test deps build lint bench

run: deps
	$(GO) run ./cmd/hmp serve

test: deps
	$(GO) test -count=1 -timeout 30m ./...

deps:
	@./scripts/deps.sh

build:
	$(GO) build -o bin/hmp ./cmd/hmp

lint:
	gofmt -l . | (! grep .) || (echo "gofmt: files above need formatting" && exit 1)
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchtime 3s ./...
