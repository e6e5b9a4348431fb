# Interleaved timing of `taskloom run` from two builds (BEFORE, AFTER) against
# `timeout 10 /bin/true`: ROUNDS rounds of the five commands in turn, medians.
# Usage: BEFORE=path/to/old/taskloom AFTER=path/to/new/taskloom python3 interleave.py [ROUNDS]
import subprocess, time, statistics, sys
import os
B = os.environ.get("BEFORE", "target/before/release/taskloom")
A = os.environ.get("AFTER", "target/release/taskloom")
cmds = {
 "timeout /bin/true": ["timeout","10","/bin/true"],
 "before run": [B,"run","-q","--","/bin/true"],
 "after run": [A,"run","-q","--","/bin/true"],
 "before run limits": [B,"run","-q","--memory","64M","--max-processes","64","--","/bin/true"],
 "after run limits": [A,"run","-q","--memory","64M","--max-processes","64","--","/bin/true"],
}
rounds = int(sys.argv[1]) if len(sys.argv)>1 else 40
t = {k: [] for k in cmds}
for _ in range(3):
    for c in cmds.values(): subprocess.run(c, check=True)
for _ in range(rounds):
    for k, c in cmds.items():
        s = time.perf_counter(); subprocess.run(c, check=True); t[k].append(time.perf_counter()-s)
base = statistics.median(t["timeout /bin/true"])
for k, v in t.items():
    m = statistics.median(v)
    print(f"{k:22s} median {m*1000:7.2f} ms  = {m/base:5.2f}x")
