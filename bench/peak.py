#!/usr/bin/env python3
"""Runs a command; prints its wall seconds, the peak RSS of the largest process it ran
(itself or a child, as GNU time reports it) and its own peak RSS (VmHWM, sampled from /proc
every 2 ms until it exits), in KiB. Its output goes to stdout.txt-style files the caller picks.

Usage: peak.py OUT COMMAND...   (OUT receives "seconds max_kib own_kib")
"""
import resource
import subprocess
import sys
import time

out, command = sys.argv[1], sys.argv[2:]
started = time.monotonic()
child = subprocess.Popen(command)
own = 0
status_path = f"/proc/{child.pid}/status"
while child.poll() is None:
    try:
        with open(status_path) as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    own = max(own, int(line.split()[1]))
                    break
    except OSError:
        pass
    time.sleep(0.002)
seconds = time.monotonic() - started
largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
with open(out, "w") as f:
    f.write(f"{seconds:.2f} {largest} {own}\n")
sys.exit(child.returncode)
