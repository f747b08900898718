#!/usr/bin/env bash
# End-to-end benchmarks of `wssniff read` on generated captures, with tshark
# and tcpdump on the same files for comparison. Prints a markdown table (paste
# it into BENCHMARKS.md).
#
#   scripts/bench.sh [SIZE...]        default: 100M 1G
#   A SIZE ending in "+deflate" (e.g. 1G+deflate) is a capture whose
#   messages are compressed (permessage-deflate), as on most real captures.
#   RUNS=5 (median of RUNS), MSS=1460, WORK=/tmp/wssniff-bench, NO_TSHARK=1 to skip tshark
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
# Ethernet-sized segments by default, as on a real network capture (loopback
# and GRO captures have larger ones: MSS=65495).
MSS=${MSS:-1460}
WORK=${WORK:-/tmp/wssniff-bench}
SIZES=("$@"); [ ${#SIZES[@]} -gt 0 ] || SIZES=(100M 1G)
TARGET=${CARGO_TARGET_DIR:-target}
mkdir -p "$WORK"
[ -n "${SKIP_BUILD:-}" ] || cargo build --release --bin wssniff --example wssniff-gen >&2
BIN="$TARGET/release/wssniff"
GEN="$TARGET/release/examples/wssniff-gen"
TIME=/usr/bin/time
[ -x "$TIME" ] || { echo "need /usr/bin/time (apt-get install time)" >&2; exit 1; }

# pair LABEL FILE ARGS...: `wssniff read ARGS FILE` with --threads 1 and
# --threads 2, run alternately (so that a slow spell of this VM hits both
# alike); a row for each, then the speed-up of the medians.
pair() {
  local label=$1 file=$2; shift 2
  local t1=() t2=() c1=() c2=() r1=0 r2=0
  for _ in $(seq "$RUNS"); do
    for n in 1 2; do
      cat "$file" > /dev/null
      "$TIME" -o "$WORK/time.out" -f '%e %M %U %S' "$BIN" read -q "$@" --threads "$n" "$file" >/dev/null 2>/dev/null || true
      local e m u s; read -r e m u s < <(tail -1 "$WORK/time.out")
      local c; c=$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')
      if [ "$n" = 1 ]; then t1+=("$e"); c1+=("$c"); [ "$m" -gt "$r1" ] && r1=$m
      else t2+=("$e"); c2+=("$c"); [ "$m" -gt "$r2" ] && r2=$m; fi
    done
  done
  local m1 m2
  m1=$(median "${t1[@]}"); m2=$(median "${t2[@]}")
  row "$file" "$label --threads 1" "$m1" "$(median "${c1[@]}")" "$r1"
  row "$file" "$label --threads 2" "$m2" "$(median "${c2[@]}")" "$r2"
  echo "| $(basename "$file") | **$label: --threads 2 speed-up** | | | | | **$(awk -v a="$m1" -v b="$m2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')x** (min $(awk -v a="$(printf '%s\n' "${t1[@]}" | sort -g | head -1)" -v b="$(printf '%s\n' "${t2[@]}" | sort -g | head -1)" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')x) | |"
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# row FILE LABEL WALL CPU RSS_KB
row() {
  local size; size=$(stat -c %s "$1")
  local mbs; mbs=$(awk -v s="$size" -v t="$3" 'BEGIN { printf "%.0f", (t > 0 ? s / t / 1e6 : 0) }')
  local cmbs; cmbs=$(awk -v s="$size" -v t="$4" 'BEGIN { printf "%.0f", (t > 0 ? s / t / 1e6 : 0) }')
  printf '| %s | %s | %s | %s | %s | %.1f | %s | %s |\n' "$(basename "$1")" "$2" "$RUNS" "$3" "$4" "$(awk -v r="$5" 'BEGIN{print r/1024}')" "$mbs" "$cmbs"
  eval "LAST_MBS_${2//[^a-zA-Z0-9]/_}=$mbs"
}

# run LABEL FILE CMD...: median wall time over RUNS, peak RSS (max), MB/s.
run() {
  local label=$1 file=$2; shift 2
  local runs=${RUNS_OVERRIDE:-$RUNS} times=() cpus=() rss=0
  for _ in $(seq "$runs"); do
    [ -n "${PRE:-}" ] && eval "$PRE"
    # Warm before every run: this machine's kernel pages out idle page
    # cache (DAMON's pageout scheme), which would otherwise make some runs
    # read from disk.
    cat "$file" > /dev/null
    local out
    # time's own report goes to a file: the command's stderr is discarded.
    "$TIME" -o "$WORK/time.out" -f '%e %M %U %S' "$@" >/dev/null 2>/dev/null || true
    out=$(tail -1 "$WORK/time.out")
    local e m u s; read -r e m u s <<<"$out"
    times+=("$e"); cpus+=("$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')")
    [ "$m" -gt "$rss" ] && rss=$m
  done
  RUNS=$runs row "$file" "$label" "$(median "${times[@]}")" "$(median "${cpus[@]}")" "$rss"
}

echo "Machine: $(nproc) vCPU, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB RAM; $(uname -sr)"
echo "Command: RUNS=$RUNS scripts/bench.sh ${SIZES[*]}; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
# Wall time is what users see; CPU time (user + sys, all threads) is less
# disturbed by other load on the machine.
echo "| capture | command | runs | median wall s | median CPU s | peak RSS MiB | MB/s (wall) | MB/CPU-s |"
echo "|---|---|---|---|---|---|---|---|"
for spec in "${SIZES[@]}"; do
  size=${spec%+deflate}
  if [ "$size" != "$spec" ]; then name="gen-$size-deflate-mss$MSS"; extra=(--deflate); else name="gen-$size-mss$MSS"; extra=(); fi
  F="$WORK/$name.pcap"
  if [ ! -s "$F" ]; then
    "$GEN" --seed 1 --connections 200 --size "$size" --sizes mixed --mss "$MSS" "${extra[@]}" -o "$F" --truth "$WORK/$name.truth.jsonl" > "$WORK/$name.summary" 2>&1
  fi
  cat "$F" > /dev/null  # warm the page cache
  run "tcpdump -r -w /dev/null" "$F" tcpdump -r "$F" -w /dev/null
  pair "read --stats" "$F" --stats
  pair "read --json" "$F" --json
  pair "read (transcript)" "$F" --color never
  PRE="rm -rf '$WORK/export'" RUNS_OVERRIDE=1 run "read --export" "$F" "$BIN" read -q --export "$WORK/export" "$F"
  rm -rf "$WORK/export"
  if command -v tshark >/dev/null && [ -z "${NO_TSHARK:-}" ]; then
    ports=$(grep -o 'server ports \[[0-9, ]*\]' "$WORK/$name.summary" | grep -o '[0-9]\+' || true)
    [ -n "$ports" ] || ports=$("$BIN" read -q --json --threads 1 "$F" | grep -m 200 '"type":"session"' | grep -o '"server":"[^"]*"' | sed 's/.*://; s/"//' | sort -u)
    dargs=(); for p in $ports; do dargs+=(-d "tcp.port==$p,http"); done
    RUNS_OVERRIDE=1 run "tshark -q -Y websocket" "$F" tshark -n -q -r "$F" -Y websocket "${dargs[@]}"
    ratio=$(awk -v a="$LAST_MBS_read___stats___threads_1" -v b="$LAST_MBS_tshark__q__Y_websocket" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }')
    echo "| $(basename "$F") | **read --stats --threads 1 vs tshark** | | | | | **${ratio}x** | |"
  fi
done
echo
echo "Load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
