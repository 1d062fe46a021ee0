#!/usr/bin/env bash
# Writes a copy of the cargo workspace that holds only what dependency resolution needs:
# every manifest, Cargo.lock, and a stub for each build target (lib.rs, main.rs,
# src/bin/*.rs, build.rs) that exists in the real crate. The Dockerfile builds this
# skeleton first, so the layer with the compiled dependencies stays cached until a
# manifest or Cargo.lock changes (the cargo-chef idea, without downloading a tool).
#
# Usage: cargo-skeleton.sh <workspace-dir> <output-dir>
# The output is byte-for-byte deterministic for the same manifests, which is what lets
# Docker's content-addressed COPY --from hit its cache.
set -euo pipefail

src=${1:?usage: cargo-skeleton.sh <workspace-dir> <output-dir>}
out=${2:?usage: cargo-skeleton.sh <workspace-dir> <output-dir>}

mkdir -p "$out"
cp "$src/Cargo.toml" "$src/Cargo.lock" "$out/"
# Cargo reads these too when present; harmless when absent.
for extra in .cargo/config.toml rust-toolchain.toml; do
  if [[ -f "$src/$extra" ]]; then
    mkdir -p "$out/$(dirname "$extra")"
    cp "$src/$extra" "$out/$extra"
  fi
done

shopt -s nullglob
for manifest in "$src"/crates/*/Cargo.toml; do
  crate_dir=$(dirname "$manifest")
  crate=$(basename "$crate_dir")
  mkdir -p "$out/crates/$crate"
  cp "$manifest" "$out/crates/$crate/Cargo.toml"
  for target in "$crate_dir"/src/lib.rs "$crate_dir"/src/main.rs "$crate_dir"/src/bin/*.rs "$crate_dir"/build.rs; do
    [[ -f "$target" ]] || continue # literal paths survive nullglob: keep only real targets
    rel=${target#"$crate_dir"/}
    mkdir -p "$out/crates/$crate/$(dirname "$rel")"
    case "$rel" in
      src/lib.rs) printf '//! Dependency-caching stub written by cargo-skeleton.sh.\n' ;;
      *) printf '//! Dependency-caching stub written by cargo-skeleton.sh.\nfn main() {}\n' ;;
    esac >"$out/crates/$crate/$rel"
  done
done
