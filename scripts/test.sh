#!/usr/bin/env bash
# Runs the tests layer by layer: `scripts/test.sh` (= `npm test`) runs every layer in this order,
# `scripts/test.sh LAYER...` (= `npm run test:LAYER`) only those. Each layer installs and builds
# what it needs itself (scripts/setup.sh once per run; the demo is built once per run).
#
#   lint         cargo fmt --check; clippy -D warnings natively, on wasm32, with the npm package's
#                feature js
#   native       cargo test --workspace
#   wasm         the wasm tests under Node (wasm-bindgen-test)
#   release      builds the demo; offline release checks (scripts/check-package.sh: wrangler
#                deploy --dry-run, crate contents, cargo publish --dry-run, rustdoc)
#   e2e          builds the demo; the end-to-end tests (tests/e2e) against it on memory://, kv:// and do://
#   js           the npm package (js/): its build, npm pack --dry-run, JS unit tests under Node,
#                tsc over a typed example, npm pack → install → serve (tests/package), and the
#                end-to-end tests against the JS demo (examples/js-demo) on memory://, kv:// and do://
#   bench-smoke  short runs of the benchmarks (bench/run.mjs --quick, bench/scale.mjs --quick;
#                asserts nothing about speed)
#   soak-small   scripts/soak.mjs, 1 000 requests at 32 connections per engine
#
# Workers are served by wrangler on free loopback ports and stopped by the tests themselves.
# Prints the tests counted per layer at the end, then "gluebind: N passed, M failed"; stops at
# the first failing step with a non-zero status.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
logs="$ROOT/target/test-logs"
mkdir -p "$logs"

ALL_LAYERS=(lint native wasm release e2e js bench-smoke soak-small)
layers=("$@")
[ ${#layers[@]} -eq 0 ] && layers=("${ALL_LAYERS[@]}")
for layer in "${layers[@]}"; do
  if [[ " ${ALL_LAYERS[*]} " != *" $layer "* ]]; then
    echo "unknown layer: $layer (layers: ${ALL_LAYERS[*]})" >&2
    exit 2
  fi
done

# cargo's "test result: ok. N passed; M failed" lines, summed over a log.
cargo_counts() { awk '/^test result:/ { p += $4; f += $6 } END { printf "%d %d\n", p, f }' "$1"; }
# node --test's "# pass N" / "# fail N" summary.
node_counts() { awk '/^# pass / { p = $3 } /^# fail / { f = $3 } END { printf "%d %d\n", p, f }' "$1"; }
# scripts/soak.mjs's "soak result: <engine> pass|fail" lines, one per engine.
soak_counts() { awk '/^soak result: / { if ($NF == "pass") p++; else f++ } END { printf "%d %d\n", p, f }' "$1"; }

demo_built=0
build_demo() {
  [ "$demo_built" = 1 ] && return
  step "build the demo worker"
  bash scripts/build.sh
  demo_built=1
}

# node --test over DIR with the environment given before it; counts into the named variables.
node_suite() { # LOG PASS_VAR FAIL_VAR [ENV=VALUE...] -- DIR
  local log=$1 pv=$2 fv=$3 p f
  shift 3
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  env "${envs[@]}" node --test --test-concurrency=1 "$@" 2>&1 | tee "$logs/$log"
  read -r p f < <(node_counts "$logs/$log")
  printf -v "$pv" %s "$p"
  printf -v "$fv" %s "$f"
}

layer_lint() {
  step "cargo fmt --check"
  cargo fmt --all -- --check

  # The workspace's [patch.crates-io] puts regex-lite in place of GlueSQL's regex (a fifth of
  # the wasm): a dependency that Cargo could not patch would bring regex-automata back.
  step "Cargo.lock: regex is the vendored regex-lite"
  # (regex-syntax alone is proptest's, a dev-dependency.)
  if grep -Eq '^name = "regex-automata"$' Cargo.lock; then
    echo "Cargo.lock has the full regex crate again (regex-automata): see vendor/regex" >&2
    exit 1
  fi

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
}

layer_native() {
  step "native tests (cargo test --workspace)"
  cargo test --workspace 2>&1 | tee "$logs/native.log"
  read -r native_pass native_fail < <(cargo_counts "$logs/native.log")
}

layer_wasm() {
  step "wasm tests under Node (wasm-bindgen-test)"
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --target wasm32-unknown-unknown --test wasm 2>&1 | tee "$logs/wasm.log"
  read -r wasm_pass wasm_fail < <(cargo_counts "$logs/wasm.log")
}

layer_release() {
  build_demo
  bash scripts/check-package.sh
}

layer_e2e() {
  build_demo
  # tests/e2e/migrations.test.mjs runs the demo's previous deploy, a worker on the npm package.
  step "build the npm package (js/dist) for the previous-deploy worker"
  bash scripts/build-js.sh
  step "end-to-end tests against the demo, memory://"
  node_suite e2e-memory.log mem_pass mem_fail -- tests/e2e/
  step "end-to-end tests against the demo, kv://GLUEBIND_KV (local KV)"
  node_suite e2e-kv.log kv_pass kv_fail GLUEBIND_E2E_DATABASE_URL=kv://GLUEBIND_KV -- tests/e2e/
  step "end-to-end tests against the demo, do://GLUEBIND_DB (local Durable Object)"
  node_suite e2e-do.log do_pass do_fail GLUEBIND_E2E_DATABASE_URL=do://GLUEBIND_DB -- tests/e2e/
}

layer_js() {
  # Optimized, as packed: the unit tests, the package test and the JS demo run what users get.
  step "build the npm package (js/dist, wasm-opt $WASM_OPT_LEVEL)"
  bash scripts/build-js.sh --opt

  bash scripts/check-npm-pack.sh

  step "JS unit tests under Node (js/test)"
  node --test js/test/ 2>&1 | tee "$logs/js-unit.log"
  read -r js_pass js_fail < <(node_counts "$logs/js-unit.log")

  step "tsc --noEmit over the typed example (js/test/types)"
  types_pass=0 types_fail=1
  if tsc --noEmit -p js/test/types; then types_pass=1 types_fail=0; echo "    types OK"; fi

  step "npm pack → install into a fresh worker project → serve it"
  node_suite package.log pack_pass pack_fail -- tests/package/

  local js_demo=GLUEBIND_E2E_CONFIG=examples/js-demo/wrangler.toml
  step "end-to-end tests against the JS demo (examples/js-demo), memory://"
  node_suite e2e-js.log jsmem_pass jsmem_fail "$js_demo" -- tests/e2e/
  step "end-to-end tests against the JS demo (examples/js-demo), kv://GLUEBIND_KV (local KV)"
  node_suite e2e-js-kv.log jskv_pass jskv_fail "$js_demo" GLUEBIND_E2E_DATABASE_URL=kv://GLUEBIND_KV -- tests/e2e/
  step "end-to-end tests against the JS demo (examples/js-demo), do://GLUEBIND_DB (local Durable Object)"
  node_suite e2e-js-do.log jsdo_pass jsdo_fail "$js_demo" GLUEBIND_E2E_DATABASE_URL=do://GLUEBIND_DB -- tests/e2e/
}

layer_bench_smoke() {
  step "bench smoke run (bench/run.mjs --quick: starts, measures briefly, prints; no timing assertions)"
  bash bench/build.sh --no-opt >"$logs/bench-build.log" 2>&1 || { cat "$logs/bench-build.log"; exit 1; }
  demo_built=1 # bench/build.sh builds the demo too
  node bench/run.mjs --quick 2>&1 | tee "$logs/bench-smoke.log"
  step "scaling benchmark smoke run (bench/scale.mjs --quick: 50 and 200 rows, every engine)"
  node bench/scale.mjs --quick 2>&1 | tee -a "$logs/bench-smoke.log"
}

layer_soak_small() {
  build_demo
  step "soak, small (scripts/soak.mjs: 1 000 requests at 32 connections per engine, memory:// kv:// do://; nothing lost or duplicated)"
  node scripts/soak.mjs --requests 1000 --connections 32 --engine all --timeout 120 2>&1 | tee "$logs/soak.log"
  read -r soak_pass soak_fail < <(soak_counts "$logs/soak.log")
}

bash scripts/setup.sh
for layer in "${layers[@]}"; do
  "layer_${layer//-/_}"
done
done_steps

# The summary: the counted layers that ran, in the same order.
ran() { [[ " ${layers[*]} " == *" $1 "* ]]; }
parts=()
total_pass=0 total_fail=0
count() { total_pass=$((total_pass + $1)); total_fail=$((total_fail + $2)); }
ok=1
if ran native; then parts+=("native $native_pass"); count "$native_pass" "$native_fail"; fi
if ran wasm; then
  parts+=("wasm $wasm_pass"); count "$wasm_pass" "$wasm_fail"
  [ "$wasm_pass" -gt 0 ] || ok=0
fi
if ran e2e; then
  parts+=("end-to-end $((mem_pass + kv_pass + do_pass)) ($mem_pass memory://, $kv_pass kv://, $do_pass do://)")
  count $((mem_pass + kv_pass + do_pass)) $((mem_fail + kv_fail + do_fail))
  [ "$mem_pass" -gt 0 ] && [ "$kv_pass" -gt 0 ] && [ "$do_pass" -gt 0 ] || ok=0
fi
if ran js; then
  parts+=("JS unit $js_pass" "types $types_pass" "package $pack_pass"
    "end-to-end (JS demo) $((jsmem_pass + jskv_pass + jsdo_pass)) ($jsmem_pass memory://, $jskv_pass kv://, $jsdo_pass do://)")
  count "$js_pass" "$js_fail"; count "$types_pass" "$types_fail"; count "$pack_pass" "$pack_fail"
  count $((jsmem_pass + jskv_pass + jsdo_pass)) $((jsmem_fail + jskv_fail + jsdo_fail))
  [ "$js_pass" -gt 0 ] && [ "$pack_pass" -gt 0 ] && [ "$jsmem_pass" -gt 0 ] && [ "$jskv_pass" -gt 0 ] \
    && [ "$jsdo_pass" -gt 0 ] || ok=0
fi
if ran soak-small; then
  parts+=("soak $soak_pass (one per engine)"); count "$soak_pass" "$soak_fail"
  [ "$soak_pass" -eq 3 ] || ok=0
fi
echo
if [ ${#parts[@]} -gt 0 ]; then
  summary=$(printf '%s, ' "${parts[@]}")
  echo "tests per layer: ${summary%, }"
fi
echo "gluebind: $total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ] && [ "$ok" = 1 ]
