#!/usr/bin/env bash
# Runs every test: set-up, lints, native tests, wasm tests under Node, the demo build, and the
# end-to-end tests against a real `wrangler dev` (started on a free loopback port and stopped
# by PID by the tests themselves); then the npm package (js/): its build, JS unit tests under
# Node, tsc over a typed example, npm pack → install → wrangler dev, and the same end-to-end
# contract against the JS demo (examples/js-demo) on memory:// and kv://; then a short smoke
# run of the benchmark (`npm run bench`) and a small soak (`npm run soak`). Prints the tests
# counted per layer at the end.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
logs="$ROOT/target/test-logs"
mkdir -p "$logs"

bash scripts/setup.sh

# cargo's "test result: ok. N passed; M failed" lines, summed over a log.
cargo_counts() { awk '/^test result:/ { p += $4; f += $6 } END { printf "%d %d\n", p, f }' "$1"; }
# node --test's "# pass N" / "# fail N" summary.
node_counts() { awk '/^# pass / { p = $3 } /^# fail / { f = $3 } END { printf "%d %d\n", p, f }' "$1"; }
# scripts/soak.mjs's "soak result: <engine> pass|fail" lines, one per engine.
soak_counts() { awk '/^soak result: / { if ($NF == "pass") p++; else f++ } END { printf "%d %d\n", p, f }' "$1"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy, native (-D warnings)"
cargo clippy --workspace --all-targets -- -D warnings

step "clippy, wasm32 (-D warnings)"
cargo clippy --workspace --all-targets --target wasm32-unknown-unknown -- -D warnings

step "clippy, wasm32 with the npm package's feature js (-D warnings)"
# In the main target directory: checks leave no feature-less artifact to flip (unlike the
# package's release build, which has its own directory, see lib.sh), and the dependencies
# checked by the step above are reused (on a cold machine this saves checking them again).
cargo clippy --workspace --all-targets --target wasm32-unknown-unknown --features gluebind/js \
  -- -D warnings
# The package's own configuration: the js feature without workers-rs.
cargo clippy -p gluebind --lib --target wasm32-unknown-unknown --no-default-features \
  --features js -- -D warnings

step "native tests (cargo test --workspace)"
cargo test --workspace 2>&1 | tee "$logs/native.log"
read -r native_pass native_fail < <(cargo_counts "$logs/native.log")

step "wasm tests under Node (wasm-bindgen-test)"
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
  cargo test --target wasm32-unknown-unknown --test wasm 2>&1 | tee "$logs/wasm.log"
read -r wasm_pass wasm_fail < <(cargo_counts "$logs/wasm.log")

step "build the demo worker"
bash scripts/build.sh

bash scripts/check-package.sh

step "end-to-end tests against wrangler dev, memory://"
node --test --test-concurrency=1 tests/e2e/ 2>&1 | tee "$logs/e2e-memory.log"
read -r mem_pass mem_fail < <(node_counts "$logs/e2e-memory.log")

step "end-to-end tests against wrangler dev, kv://GLUEBIND_KV (local KV)"
GLUEBIND_E2E_DATABASE_URL="kv://GLUEBIND_KV" \
  node --test --test-concurrency=1 tests/e2e/ 2>&1 | tee "$logs/e2e-kv.log"
read -r kv_pass kv_fail < <(node_counts "$logs/e2e-kv.log")

step "build the npm package (js/dist)"
bash scripts/build-js.sh

bash scripts/check-npm-pack.sh

step "JS unit tests under Node (js/test)"
node --test js/test/ 2>&1 | tee "$logs/js-unit.log"
read -r js_pass js_fail < <(node_counts "$logs/js-unit.log")

step "tsc --noEmit over the typed example (js/test/types)"
types_pass=0 types_fail=1
if tsc --noEmit -p js/test/types; then types_pass=1 types_fail=0; echo "    types OK"; fi

step "npm pack → install into a fresh worker project → wrangler dev"
node --test --test-concurrency=1 tests/package/ 2>&1 | tee "$logs/package.log"
read -r pack_pass pack_fail < <(node_counts "$logs/package.log")

step "end-to-end tests against the JS demo (examples/js-demo), memory://"
GLUEBIND_E2E_CONFIG=examples/js-demo/wrangler.toml \
  node --test --test-concurrency=1 tests/e2e/ 2>&1 | tee "$logs/e2e-js.log"
read -r jsmem_pass jsmem_fail < <(node_counts "$logs/e2e-js.log")

step "end-to-end tests against the JS demo (examples/js-demo), kv://GLUEBIND_KV (local KV)"
GLUEBIND_E2E_CONFIG=examples/js-demo/wrangler.toml GLUEBIND_E2E_DATABASE_URL="kv://GLUEBIND_KV" \
  node --test --test-concurrency=1 tests/e2e/ 2>&1 | tee "$logs/e2e-js-kv.log"
read -r jskv_pass jskv_fail < <(node_counts "$logs/e2e-js-kv.log")

step "bench smoke run (bench/run.mjs --quick: starts, measures briefly, prints; no timing assertions)"
bash bench/build.sh --no-opt >"$logs/bench-build.log" 2>&1 || { cat "$logs/bench-build.log"; exit 1; }
node bench/run.mjs --quick 2>&1 | tee "$logs/bench-smoke.log"

step "soak, small (scripts/soak.mjs: 1 000 requests at 32 connections per engine; nothing lost or duplicated)"
node scripts/soak.mjs --requests 1000 --connections 32 --engine both --timeout 120 2>&1 | tee "$logs/soak.log"
read -r soak_pass soak_fail < <(soak_counts "$logs/soak.log")
done_steps

e2e_pass=$((mem_pass + kv_pass))
e2e_fail=$((mem_fail + kv_fail))
e2ejs_pass=$((jsmem_pass + jskv_pass))
e2ejs_fail=$((jsmem_fail + jskv_fail))
echo
echo "tests per layer: native $native_pass, wasm $wasm_pass, end-to-end $e2e_pass ($mem_pass memory://, $kv_pass kv://)," \
  "JS unit $js_pass, types $types_pass, package $pack_pass, end-to-end (JS demo) $e2ejs_pass ($jsmem_pass memory://, $jskv_pass kv://)," \
  "soak $soak_pass (one per engine)"
total_pass=$((native_pass + wasm_pass + e2e_pass + js_pass + types_pass + pack_pass + e2ejs_pass + soak_pass))
total_fail=$((native_fail + wasm_fail + e2e_fail + js_fail + types_fail + pack_fail + e2ejs_fail + soak_fail))
echo "gluebind: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$e2e_pass" -gt 0 ] && [ "$wasm_pass" -gt 0 ] && [ "$js_pass" -gt 0 ] \
  && [ "$pack_pass" -gt 0 ] && [ "$jsmem_pass" -gt 0 ] && [ "$jskv_pass" -gt 0 ] && [ "$soak_pass" -eq 2 ]
