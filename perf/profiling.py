"""`BENCH_PROFILE=<dir>`: sample the service with py-spy while wrk drives it (first round only).

py-spy (the `bench` extra) attaches to the running uvicorn process from outside, so the service
runs unmodified. Output is py-spy's collapsed-stack text (`-f raw`), one file per scenario, which
`python bench/profiling.py <file>` summarises as the functions with the most samples; speedscope
or inferno turn the same files into flame graphs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def profiled(pid: int, output: Path | None, seconds: float) -> Iterator[None]:
    """Record `pid` for `seconds` into `output` (nothing when `output` is None)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if output is None:
        yield
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    argv = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds)))]
    argv += ["--format", "raw", "--output", str(output), "--nonblocking", "--rate", "250"]
    recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield
    finally:
        recorder.wait(timeout=seconds + 30)


def summarise(path: Path, top: int = 25) -> list[str]:
    """The frames with the most samples, inclusive (anywhere on the stack) and self (on top)."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = stack.split(";")
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    lines = [f"{total} samples; inclusive %:"]
    lines += [f"  {100 * n / total:5.1f}  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["self %:"]
    lines += [f"  {100 * n / total:5.1f}  {frame}" for frame, n in own.most_common(top)]
    return lines


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(name, *summarise(Path(name)), sep="\n")
