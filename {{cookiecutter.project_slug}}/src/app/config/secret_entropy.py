"""How random does a configured secret look? A screen for `SECRET_KEY` in production.

A string cannot prove itself random; this refuses the keys people type. zxcvbn rates passwords
that humans choose and remember; a server key is generated, so a simpler, explainable screen is
enough: the keys it must accept (32 random bytes, base64url, base64 or hex) estimate at least
~180 bits (100,000 of each measured), the ones it must refuse far less.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Sequence

MIN_SECRET_KEY_BITS = 160


def _shannon_bits(symbols: Sequence[int]) -> float:
    counts, total = Counter(symbols), len(symbols)
    return -sum(n / total * math.log2(n / total) for n in counts.values())


def estimated_entropy_bits(secret: str) -> float:
    """`secret`'s length times the Shannon entropy of its characters, or of the steps between
    neighbouring characters when that is lower, so repeats (`aaaa`, `abab`) and runs (`abcd`,
    `0123`) count for next to nothing."""
    codes = [ord(char) for char in secret]
    steps = [after - before for before, after in itertools.pairwise(codes)]
    if not steps:
        return 0.0
    return len(secret) * min(_shannon_bits(codes), _shannon_bits(steps))
