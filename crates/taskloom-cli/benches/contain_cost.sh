#!/bin/bash
# Interleaved whole-command timings: this session's build against the one before it,
# contained and uncontained, and `timeout 10 /bin/true`; medians in microseconds.
cp "$1" /tmp/tl-before; cp "$2" /tmp/tl-after
N=${3:-30}
r=/tmp/bench.$$
run() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e-s)/1000 )); }
for i in 1 2 3; do /tmp/tl-before run -q -- /bin/true; /tmp/tl-after run -q -- /bin/true; done
for i in $(seq "$N"); do
  echo "timeout $(run timeout 10 /bin/true)" >> $r
  echo "before_contained $(run /tmp/tl-before run -q -- /bin/true)" >> $r
  echo "before_uncontained $(run /tmp/tl-before run -q --uncontained -- /bin/true)" >> $r
  echo "after_contained $(run /tmp/tl-after run -q -- /bin/true)" >> $r
  echo "after_uncontained $(run /tmp/tl-after run -q --uncontained -- /bin/true)" >> $r
done
/tmp/tl-after job caps | grep -o "^containment *[a-z]*"
for k in timeout before_contained before_uncontained after_contained after_uncontained; do
  printf '%-20s %s us\n' "$k" "$(grep "^$k " $r | awk '{print $2}' | sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}')"
done
