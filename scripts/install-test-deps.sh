#!/usr/bin/env bash
# Installs what kinko's tests need on a fresh machine. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=local
# The btcd node, built from go.mod's tool directive into Go's build cache.
go tool -n btcd >/dev/null
# Chromium for the operator console's browser tests.
bash scripts/install-chromium.sh
