#!/usr/bin/env bash
# Fetches the audited Safe contracts v1.4.1 (@safe-global/safe-contracts
# from npm, never vendored) for the Ethereum tests: `npm pack` downloads the
# published tarball, its sha512 is checked against the integrity pinned
# here (npm's dist.integrity for 1.4.1) before anything is unpacked, and
# the compiled artifacts land in the cache directory internal/chain/eth/safe
# reads: $KINKO_SAFE_CONTRACTS if set, else
# ${XDG_CACHE_HOME:-~/.cache}/kinko/safe-contracts-1.4.1 (on macOS
# ~/Library/Caches/kinko/...). Idempotent: a verified copy is kept.
set -euo pipefail
version=1.4.1
integrity='sha512-fP1jewywSwsIniM04NsqPyVRFKPMAuirC3ftA/TA4X3Zc5EnwQp/UCJUU2PL/37/z/jMo8UUaJ+pnFNWmMU7dQ=='
if [ -n "${KINKO_SAFE_CONTRACTS:-}" ]; then
  dest=$KINKO_SAFE_CONTRACTS
else
  if [ "$(uname)" = Darwin ]; then
    cache=$HOME/Library/Caches
  else
    cache=${XDG_CACHE_HOME:-$HOME/.cache}
  fi
  dest=$cache/kinko/safe-contracts-$version
fi
# A finished install leaves the integrity it checked beside the artifacts.
if [ -f "$dest/INTEGRITY" ] && [ "$(cat "$dest/INTEGRITY")" = "$integrity" ] && [ -d "$dest/package/build/artifacts/contracts" ]; then
  exit 0
fi
# npm (and node, which checks the integrity) from Debian's packages when
# missing, as scripts/install-chromium.sh installs Chromium.
if ! command -v npm >/dev/null || ! command -v node >/dev/null; then
  if ! command -v apt-get >/dev/null; then
    echo "install-safe-contracts: npm and node are needed to fetch @safe-global/safe-contracts@$version" >&2
    exit 1
  fi
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends npm nodejs
fi
mkdir -p "$(dirname "$dest")"
tmp=$(mktemp -d "$(dirname "$dest")/.safe-contracts.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@safe-global/safe-contracts@$version" >/dev/null)
tgz=$tmp/safe-global-safe-contracts-$version.tgz
got=$(node -e 'const c=require("crypto"),f=require("fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$tgz")
if [ "$got" != "$integrity" ]; then
  echo "install-safe-contracts: $tgz has integrity $got, want $integrity: refusing to unpack" >&2
  exit 1
fi
mkdir "$tmp/out"
tar -xzf "$tgz" -C "$tmp/out" package/build/artifacts/contracts package/contracts package/LICENSE package/package.json
printf '%s' "$integrity" >"$tmp/out/INTEGRITY"
rm -rf "$dest"
mv "$tmp/out" "$dest"
echo "install-safe-contracts: @safe-global/safe-contracts@$version in $dest"
