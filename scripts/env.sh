# Sourced by the scripts: where builds go. The target directory lives outside
# the clone so a fresh clone (and CI) reuses the compiled RocksDB (~11 min cold).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard-target}"
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
# The NATS server cluster mode's tests and benchmarks start (installed by
# scripts/setup into a venv beside the target directory).
export SWITCHBOARD_NATS_DIR="${SWITCHBOARD_NATS_DIR:-$(dirname "$CARGO_TARGET_DIR")/switchboard-nats}"
export SWITCHBOARD_NATS_SERVER="${SWITCHBOARD_NATS_SERVER:-$SWITCHBOARD_NATS_DIR/bin/nats-server}"
