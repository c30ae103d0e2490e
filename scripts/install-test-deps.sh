#!/usr/bin/env bash
# Installs what kinko's tests need on a fresh machine. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
# The btcd node, built from go.mod's tool directive into Go's build cache.
go tool -n btcd >/dev/null
# The geth node (its --dev mode), built the same way.
go tool -n geth >/dev/null
# The audited Safe contracts v1.4.1 from npm, checked against their pinned
# integrity, for the Ethereum tests.
bash scripts/install-safe-contracts.sh
# Chromium for the operator console's browser tests.
bash scripts/install-chromium.sh
