"""The functions with the most samples in a py-spy flame graph (SVG), inclusive.

    python perf/flame_top.py perf/flamegraphs/before-read-service.svg [N] [FILTER]

Sums each function's samples over every stack it appears in (a function that calls itself is
counted more than once), as a percentage of all samples: enough to see which layer costs what.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from pathlib import Path

TITLE = re.compile(r"<title>([^<]*?) \(([\d,]+) samples?, [\d.]+%\)</title>")


def top(svg: Path) -> tuple[int, Counter[str]]:
    text = svg.read_text()
    total = int(re.search(r'total_samples="(\d+)"', text).group(1))  # type: ignore[union-attr]
    counts: Counter[str] = Counter()
    for name, samples in TITLE.findall(text):
        counts[name] += int(samples.replace(",", ""))
    return total, counts


if __name__ == "__main__":
    path, limit, pattern = (
        Path(sys.argv[1]),
        int(sys.argv[2]) if len(sys.argv) > 2 else 40,
        (sys.argv[3] if len(sys.argv) > 3 else ""),
    )
    total, counts = top(path)
    print(f"{path.name}: {total} samples")
    shown = [(n, c) for n, c in counts.most_common() if re.search(pattern, n)][:limit]
    for name, count in shown:
        print(f"{100 * count / total:6.1f}%  {name}")
