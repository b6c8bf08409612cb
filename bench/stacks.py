"""Where the CPU went, from py-spy's raw stacks (`bench/server.py --profile FILE`,
`bench/ingest.py --profile FILE`): each thread's share of the samples, then, for the busiest
threads, the project functions that were running (the innermost frame of our own code in
each sample, so a SQLAlchemy call is charged to the function that made it).

Run: .venv/bin/python bench/stacks.py stacks.txt [--top 12] [--threads 3]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

OURS = re.compile(r"\((?:/[^ )]*/)?((?:server|gateway|core|firmware_sim|facility)/[^:)]+)")


def _command(process_frame: str) -> str:
    """`process 123:"python -m gateway.sinks.worker"` -> `gateway.sinks.worker`."""
    cmd = process_frame.partition(":")[2].strip('"').split()
    return cmd[cmd.index("-m") + 1] if "-m" in cmd[:-1] else (cmd[0] if cmd else "")


def summarise(path: Path, top: int, threads: int) -> list[str]:
    per_thread: Counter[str] = Counter()
    where: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        # `--subprocesses` puts the process (and its parents) before the thread
        at = next((i for i, f in enumerate(frames) if f.startswith("thread (")), 0)
        procs = [f for f in frames[:at] if f.startswith("process ")]
        name = re.sub(r"^thread \(\d+\): ", "", frames[at])
        where_run = _command(procs[-1]) if procs else ""
        thread = f"{where_run}: {name}" if where_run else name
        per_thread[thread] += n
        ours = [f for f in frames[at + 1 :] if OURS.search(f)]
        func = re.sub(r"\s*\(.*", "", ours[-1]) if ours else "(outside the project)"
        module = OURS.search(ours[-1]).group(1) if ours else ""  # type: ignore[union-attr]
        where[thread][f"{func} ({module})" if module else func] += n
    total = sum(per_thread.values()) or 1
    out = [f"{total} samples"]
    out += [f"{100 * n / total:5.1f}%  {t}" for t, n in per_thread.most_common()]
    for thread, busy in per_thread.most_common(threads):
        out.append(f"-- {thread} ({100 * busy / total:.1f}% of all samples)")
        out += [f"{100 * c / busy:5.1f}%  {f}" for f, c in where[thread].most_common(top)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stacks", type=Path)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--threads", type=int, default=3)
    args = ap.parse_args()
    print("\n".join(summarise(args.stacks, args.top, args.threads)))


if __name__ == "__main__":
    main()
