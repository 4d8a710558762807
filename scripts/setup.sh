#!/usr/bin/env bash
# Installs what building and testing need, from the package registries only (nothing is
# downloaded from GitHub): the wasm32 target, wasm-bindgen-cli pinned to the version of the
# wasm-bindgen crate in Cargo.lock, and npm packages from package-lock.json. Idempotent: a
# second run only checks.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"

step "rust target wasm32-unknown-unknown"
if rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  echo "    already installed"
else
  rustup target add wasm32-unknown-unknown
fi

step "wasm-bindgen-cli (same version as the wasm-bindgen crate in Cargo.lock)"
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
if [ -z "$want" ]; then
  echo "cannot find the wasm-bindgen version in Cargo.lock" >&2
  exit 1
fi
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" = "$want" ]; then
  echo "    wasm-bindgen $have already installed"
else
  echo "    installing wasm-bindgen-cli $want (found: ${have:-none}); takes ~3 min cold"
  # Not --locked: a dependency locked by that release was yanked (see HACKING.md, "Toolchain").
  cargo install wasm-bindgen-cli --version "$want" --force
fi

step "npm packages (npm ci from package-lock.json)"
if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ]; then
  echo "    node_modules is up to date"
else
  npm ci --no-audit --no-fund
fi
done_steps
