#!/usr/bin/env bash
# Runs every test of the project (the README's test command): installs the Debian packages
# the tests need if missing (scripts/install-deps.sh), then the whole workspace's tests:
# validator (rules, proptest oracle), ABI layout vs libxen-dev, KVM boot tests, and the
# conformance tests against real Xen 4.17 in QEMU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo test --workspace --release --no-fail-fast
