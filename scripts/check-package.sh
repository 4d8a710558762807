#!/usr/bin/env bash
# Offline release checks: the deploy bundle (wrangler deploy --dry-run), the crate's package
# contents and `cargo publish --dry-run`, and rustdoc with warnings denied.
# Expects the demo to be built (scripts/build.sh).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

step "wrangler deploy --dry-run (env production)"
wrangler deploy --config wrangler.toml --env production --dry-run --outdir "$out/bundle" >"$out/deploy.log" 2>&1 \
  || { cat "$out/deploy.log"; exit 1; }
wasm=$(find "$out/bundle" -name '*.wasm' | head -1)
if [ -z "$wasm" ] || [ ! -s "$out/bundle/shim.js" ]; then
  echo "the deploy bundle lacks the wasm module or the entry script:"; ls -la "$out/bundle"; exit 1
fi
# The do:// engine's Durable Object class must be exported by the entry the deploy uploads.
grep -Eq '^ *[A-Za-z0-9_$]+ as GluebindDatabase,?$|^export class GluebindDatabase' "$out/bundle/shim.js" \
  || { echo "the deploy bundle's shim.js does not export GluebindDatabase (do://)"; exit 1; }
echo "    bundle: $(basename "$wasm") $(wc -c < "$wasm") bytes raw, $(gzip -9 -c "$wasm" | wc -c) bytes gzip -9; shim.js $(wc -c < "$out/bundle/shim.js") bytes"

step "cargo package --list (no build outputs, no secrets)"
cargo package --list --allow-dirty -p gluebind >"$out/files.txt"
if grep -Ev '^((src|tests)/.*\.rs|docs/.*\.md|README\.md|LICENSE|CHANGELOG\.md|Cargo\.toml|Cargo\.toml\.orig|Cargo\.lock|\.cargo_vcs_info\.json)$' "$out/files.txt"; then
  echo "unexpected files in the crate package (above)"; exit 1
fi
echo "    $(wc -l < "$out/files.txt") files"
cargo package --list --allow-dirty -p gluebind-macros >"$out/macro-files.txt"
if grep -Ev '^(src/.*\.rs|Cargo\.toml|Cargo\.toml\.orig|Cargo\.lock|\.cargo_vcs_info\.json)$' "$out/macro-files.txt"; then
  echo "unexpected files in the gluebind-macros package (above)"; exit 1
fi

# --no-verify: the verify step only compiles the packaged sources again, from scratch in its own
# target directory (minutes on a cold machine); the same sources are built and tested above.
# Both crates in one run: gluebind depends on gluebind-macros by version, which cargo resolves
# from the package it has just made (a real release publishes gluebind-macros first).
step "cargo publish --dry-run --no-verify (gluebind-macros, gluebind)"
cargo publish --dry-run --no-verify --allow-dirty -p gluebind-macros -p gluebind

step "cargo doc (RUSTDOCFLAGS=-D warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps -p gluebind
done_steps
