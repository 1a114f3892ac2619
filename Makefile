# Haven's one entry point. CI runs `make test`, the same command README gives.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo

.PHONY: help demo test test-unit test-e2e test-nodes test-federation images lint fmt crds chart-snapshot bench bench-acro bench-pseudo bench-gateway bench-federation control-plane cluster-up cluster-down clean

help:
	@echo "make demo          local control plane + operator + examples, then kubectl get"
	@echo "make test          lint, unit tests, end-to-end tests against a local control plane, then the real-node and federation tiers"
	@echo "make test-nodes    the real-node tier alone: packets, the environment from inside, the operator's pod (root)"
	@echo "make test-federation  three sites side by side (two real nodes, one kwok), joined for compute-to-data (root)"
	@echo "make images        build the images without a container engine (target/images; see Dockerfile)"
	@echo "make crds          regenerate crds/ from the Rust types (and the Helm chart's copies)"
	@echo "make chart-snapshot  re-render charts/haven/tests/snapshot.yaml (default values)"
	@echo "make bench         scale (long; a quiet machine): provisioning vs a raw client, idle writes, memory, teardown lag; make bench-pseudo: preparation vs qsv and pandas; make bench-gateway: the gateway vs nginx and direct (BENCHMARKS.md)"
	@echo "make lint | fmt    clippy -D warnings and rustfmt --check | format the code"
	@echo "make cluster-up    start the local control plane (.cluster/kubeconfig); cluster-down stops it"

demo:
	e2e/demo.sh

test: lint test-unit test-e2e test-nodes test-federation

test-unit:
	$(CARGO) test --workspace --exclude haven-e2e --exclude haven-e2e-nodes --exclude haven-e2e-federation

# Brings up its own control plane (or uses $$KUBECONFIG when set) and always tears it down.
test-e2e:
	e2e/run-e2e.sh

# A local control plane with a real node (containerd, kubelet, kube-proxy, kube-router, CoreDNS
# in a network namespace of its own), the chart with the operator's image, and e2e/nodes. Needs
# root; elsewhere it says loudly that it skipped (HAVEN_REQUIRE_REAL_NODE=1 makes that fail).
test-nodes:
	e2e/run-nodes.sh

# Three local control planes side by side, each a Haven site with its own CA and data store:
# hub and north with a real node, south with kwok; joined by Site objects and mutual TLS. The
# tests of e2e/federation start each site's operator and `haven federation`. Root, as test-nodes.
test-federation:
	e2e/run-federation.sh

images:
	images/build.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	"$$(e2e/build-lint.sh)/actionlint" .github/workflows/*.yml

fmt:
	$(CARGO) fmt --all

# Benchmarks (not tests): figures and commands go in BENCHMARKS.md. `make bench` brings up its
# own control plane (.bench-cluster); SIZES=, IDLE_WINDOW=, ... as documented in bench/scale.sh.
bench:
	bench/scale.sh

# Haven's disclosure checks beside ACRO 1.0.2's, cell by cell (SEEDS=).
bench-acro:
	bench/acro.sh

# The access gateway against nginx doing the same job and a direct connection, on a real node.
bench-gateway:
	bench/gateway.sh

# Compute-to-data: submission to delivered packages for 1, 2 and 3 sites (each with a real node),
# against the same Job run directly at a data site (RUNS=).
bench-federation:
	HAVEN_FED_KWOK_SITES= e2e/run-federation.sh cargo run --quiet --locked -p haven-e2e-federation --example bench

# haven pseudonymise against qsv and pandas on a ~1 GB synthetic registry (ROWS=, REPS=).
bench-pseudo:
	bench/pseudonymise.sh

# The chart ships the same CRDs (crds/, installed by Helm) and admission policy (files/, a
# template); e2e/tests/chart.rs fails if they drift.
crds:
	$(CARGO) run --quiet --locked -p haven -- crd --out-dir crds
	cp crds/*.haven.io.yaml charts/haven/crds/
	cp crds/admission-policy.yaml charts/haven/files/admission-policy.yaml

# `helm template` with default values, compared by e2e/tests/chart.rs; helm comes with the
# local control plane's tools.
chart-snapshot:
	PATH="$$(e2e/build-control-plane.sh):$$PATH" helm template haven charts/haven -n haven-system > charts/haven/tests/snapshot.yaml

control-plane:
	e2e/build-control-plane.sh

cluster-up:
	e2e/cluster.sh up

cluster-down:
	e2e/cluster.sh down

clean: cluster-down
	$(CARGO) clean
