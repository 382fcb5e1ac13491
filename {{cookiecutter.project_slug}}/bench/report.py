"""Medians, ratios and goals of `make bench`: what it prints and what passes."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from load import Result


@dataclass
class PairOutcome:
    """Interleaved rounds of the service (A) against the bare app (B) on one scenario."""

    name: str
    goal: float | None
    service: list[Result] = field(default_factory=list)
    bare: list[Result] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """Median over rounds of service req/s ÷ bare req/s (each round pairs adjacent runs)."""
        ratios = [a.rps / b.rps for a, b in zip(self.service, self.bare, strict=True) if b.rps]
        return statistics.median(ratios) if ratios else 0.0

    @property
    def passed(self) -> bool:
        return self.goal is None or self.ratio >= self.goal


def _row(label: str, results: list[Result]) -> str:
    rps = statistics.median(r.rps for r in results)
    p50 = statistics.median(r.p50_ms for r in results)
    p99 = statistics.median(r.p99_ms for r in results)
    errors = sum(r.error_count for r in results)
    row = f"  {label:<8} {rps:>9.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  errors {errors}"
    cpu = [r.cpu_per_request for r in results if r.cpu_per_request is not None]
    if cpu:
        row += f"  cpu {1000 * statistics.median(cpu):.2f} ms/req"
    return row


def print_pair(outcome: PairOutcome) -> None:
    print(f"{outcome.name}")
    print(_row("service", outcome.service))
    print(_row("bare", outcome.bare))
    rounds = " ".join(
        f"{a.rps / b.rps:.2f}" for a, b in zip(outcome.service, outcome.bare, strict=True)
    )
    goal = f"goal >= {outcome.goal:.2f}x " if outcome.goal is not None else "no goal "
    verdict = "" if outcome.goal is None else ("PASS" if outcome.passed else "FAIL")
    print(f"  ratio    {outcome.ratio:.2f}x (rounds: {rounds}) {goal}{verdict}".rstrip())


# "p99 bounded" at 256 connections: the pool serves requests in arrival order, so the slowest
# wait about as long as the median one; a p99 past twice the p50 means some requests starve.
P99_OVER_P50 = 2.0


def print_load(name: str, result: Result) -> bool:
    errors = ", ".join(f"{k} {v}" for k, v in result.errors.items())
    bounded = result.p99_ms <= P99_OVER_P50 * result.p50_ms
    passed = result.error_count == 0 and bounded
    print(f"{name}")
    print(_row("service", [result]))
    print(f"  errors   {errors} (goal: 0)")
    print(f"  p99/p50  {result.p99_ms / max(result.p50_ms, 1e-9):.2f} (goal: <= {P99_OVER_P50:g})")
    print(f"  {'PASS' if passed else 'FAIL'}")
    return passed


def print_verdict(pairs: list[PairOutcome], load_passed: bool | None) -> bool:
    checks = [(p.name.split(".")[0], p.passed) for p in pairs if p.goal is not None]
    if load_passed is not None:
        checks.append(("4", load_passed))
    missed = [name for name, ok in checks if not ok]
    if missed:
        print(f"RESULT: FAIL ({len(missed)} of {len(checks)} goals missed: {', '.join(missed)})")
    else:
        print(f"RESULT: PASS (all {len(checks)} goals met)")
    return not missed
