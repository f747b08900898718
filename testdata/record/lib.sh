# Shared by record.sh and record_tls.sh (sourced after HERE and NODE_DIR
# are set): the ws install and the wait for a process's readiness line.

die() { echo "$(basename "$0"): $*" >&2; exit 1; }

setup_node() {
    mkdir -p "$NODE_DIR"
    cp "$HERE/package.json" "$HERE/package-lock.json" "$NODE_DIR/"
    (cd "$NODE_DIR" && npm ci --silent --no-audit --no-fund >/dev/null 2>&1) || die "npm ci failed in $NODE_DIR"
    export NODE_PATH="$NODE_DIR/node_modules"
}

# wait_for_line FILE PATTERN: poll FILE until it contains PATTERN (10 s at most).
wait_for_line() {
    local i
    for i in $(seq 1 200); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    die "timed out waiting for '$2' in $1"
}
