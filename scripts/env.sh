# Sourced by the other scripts: puts the project's tools on PATH and picks the WASM toolchain
# path that scripts/setup found to work on this machine.

PIPESCOPE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PATH="$HOME/.cargo/bin:$PIPESCOPE_ROOT/end2end/node_modules/.bin:$PATH"

# Extra flags for `cargo leptos`: gzip and brotli copies of the bundle, which the server sends to
# browsers that accept them, and the WASM split at every `#[lazy]` function (overlays, the run
# log, colouring, later pages), so the first load carries only the live dashboard. `--split` is
# a command-line flag only (no metadata key), and toggling it rebuilds every WASM dependency, so
# every script builds with it. Path B also builds std for wasm32 from source.
LEPTOS_FLAGS=(--precompress --split)
if [[ -f "$PIPESCOPE_ROOT/target/toolchain-debian-wasm" ]]; then
  # rustup could not add the wasm32 target: use Debian's rustc-web with std sources (TOOLCHAIN.md).
  export PATH="/usr/bin:$PATH"
  export RUSTC_BOOTSTRAP=1
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=/usr/lib/llvm-22/bin/wasm-ld
  LEPTOS_FLAGS+=(--lib-cargo-args=-Zbuild-std=std,panic_abort)
fi

# Panic messages in the bundle name their source file by its full path on the build machine
# (…/.cargo/registry/src/index.crates.io-<hash>/<crate>/src/…, the toolchain's library/…):
# written shorter, they take less of the first load. Cargo-leptos adds its own flags to these.
wasm_flags=()
for dir in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
  wasm_flags+=("--remap-path-prefix=${dir}=")
done
if sysroot="$(rustc --print sysroot 2>/dev/null)"; then
  wasm_flags+=("--remap-path-prefix=${sysroot}/lib/rustlib/src/rust/=")
  commit="$(rustc -vV | sed -n 's/^commit-hash: //p')"
  [[ -n "$commit" ]] && wasm_flags+=("--remap-path-prefix=/rustc/${commit}/=")
fi
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="${wasm_flags[*]}"
unset wasm_flags dir sysroot commit

# schemathesis (PyPI), which scripts/api-test runs against the REST API: this version, in a
# virtual environment of its own outside the work tree, so clones and CI runs on one machine
# share it and Python's own packages are left alone.
SCHEMATHESIS_VERSION=4.32.5
schemathesis_bin() {
  echo "${XDG_CACHE_HOME:-$HOME/.cache}/pipescope/schemathesis-$SCHEMATHESIS_VERSION/bin/schemathesis"
}

log() { printf '\033[1;36m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }
