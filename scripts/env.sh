# Sourced by the scripts: where builds go. The target directory lives outside
# the clone so a fresh clone (and CI) reuses the compiled RocksDB (~11 min cold).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard-target}"
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
