#!/usr/bin/env bash
# What a live view costs while it only watches: the CPU time `taskloom top`
# (in a 120x40 tmux pane, refreshing every second) and procps `top` (the same
# pane, `-d 1`) use over the same stretch, with 500 extra processes and 20
# jobs on the machine. Rounds interleave the two (the machine is noisy).
#
#   cargo build --release -p taskloom-cli && bash crates/taskloom-cli/benches/top_cost.sh [SECONDS] [ROUNDS]
#
# The extra processes run inside a `taskloom run` job with a process limit
# and a time-out, so they are bounded and all gone at the end.
set -euo pipefail
secs=${1:-30}
rounds=${2:-2}
tl=$(cd "$(dirname "$0")/../../.." && pwd)/target/release/taskloom
tick=$(getconf CLK_TCK)
"$tl" run -q --max-processes 600 --timeout $((secs * rounds * 2 + 60))s -- \
  bash -c 'for i in $(seq 500); do sleep 100000 & done; wait' &
load=$!
jobs=()
for i in $(seq 20); do
  "$tl" job create "topcost$$-$i" --max-processes 10 >/dev/null
  jobs+=("topcost$$-$i")
done
cleanup() {
  tmux kill-session -t topcost$$ 2>/dev/null || true
  for j in "${jobs[@]}"; do "$tl" job delete "$j" >/dev/null 2>&1 || true; done
  kill -INT "$load" 2>/dev/null || true
  wait "$load" 2>/dev/null || true
}
trap cleanup EXIT
sleep 3
# CPU seconds (user+system) of the process whose pid is in $1, over $secs.
measure() {
  local cmd=$1
  tmux new-session -d -s topcost$$ -x 120 -y 40 "exec $cmd"
  sleep 2
  local pid
  pid=$(tmux display -p -t topcost$$ '#{pane_pid}')
  local a b
  a=$(awk '{print $14+$15}' /proc/"$pid"/stat)
  sleep "$secs"
  b=$(awk '{print $14+$15}' /proc/"$pid"/stat)
  tmux kill-session -t topcost$$
  echo "scale=2; ($b - $a) * 100 / $tick / $secs" | bc
}
echo "processes now: $(ls -d /proc/[0-9]* | wc -l)"
for r in $(seq "$rounds"); do
  echo "round $r: taskloom top $(measure "$tl top --interval 1s")% of one CPU"
  echo "round $r: top -d 1     $(measure "top -d 1")% of one CPU"
done
