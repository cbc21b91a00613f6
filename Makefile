# mcp-edge: two commands do everything on a fresh machine.
#   make demo   build, start sample MCP servers and mcp-edge (conf/demo.toml), print what to try
#   make test   install what the tests need (system packages, pinned MCP peers), run every test

CARGO ?= cargo

.PHONY: demo test build deps peers bench loadtest fmt

deps:
	@scripts/deps.sh

peers: deps
	@scripts/peers.sh

build: deps
	$(CARGO) build --release --bins

demo: build
	scripts/demo.sh

test: peers
	$(CARGO) build --release --bins
	$(CARGO) test --release -- --test-threads 2

bench: deps
	$(CARGO) bench --bench classify --bench limits

loadtest: build
	loadtest/run.sh

fmt:
	$(CARGO) fmt --all
