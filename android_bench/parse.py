"""Parser of the TFLite / LiteRT `benchmark_model` text output.

Formats understood (any log prefix such as `INFO: ` or a logcat tag is ignored):

- current: `Inference timings in us: Init: 52687, First inference: 19105,
  Warmup (avg): 14452.5, Inference (avg): 14290.9`;
- older (TF <= 2.2 and the Android benchmark app): `Average inference timings
  in us: Warmup: 83235, Init: 38467, Inference: 79760.9` (or `no stats: ...`);
- the statistics lines `count=70 first=14941 curr=14066 min=13728 max=16145
  avg=14290.9 std=452 [p5=... median=... p95=...]` printed after the warm-up
  and after the timed runs;
- op profiling (`--enable_op_profiling=true`): the `Run Order` and `Summary by
  node type` tables and `Timings (microseconds): count=50 ... avg=79732 std=1929`
  of the regular runs (the initialization section is skipped).
"""

from __future__ import annotations

import re
from typing import Iterator

from ofa_tf.android_bench.measurement import Measurement, OpProfile
from ofa_tf.errors import OFAError

_NUMBER = r"([-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)"
_CURRENT = re.compile(
    rf"Inference timings in us: Init: {_NUMBER}, First inference: {_NUMBER}, "
    rf"Warmup \(avg\): {_NUMBER}, Inference \(avg\): {_NUMBER}"
)
_OLDER = re.compile(
    rf"Average inference timings in us: Warmup: {_NUMBER}, Init: {_NUMBER}, (?:Inference|no stats): {_NUMBER}"
)
_STATS = re.compile(r"(?:^|[\s:])count=\d+ .*\b(?:avg|curr)=")
_KEY_VALUE = re.compile(rf"(\w+)={_NUMBER}")
_INIT_PROFILE = "Profiling Info for Benchmark Initialization"
_RUN_PROFILE = "Operator-wise Profiling Info for Regular Benchmark Runs"
_TABLE_TITLE = re.compile(r"=+ (Run Order|Top by Computation Time|Summary by node type) =+")
_QUOTED_LINES = 6


class BenchmarkOutputError(OFAError):
    """`benchmark_model` printed no inference timings (a crash, a bad flag or model)."""


def parse_benchmark_output(text: str) -> Measurement:
    """Latency statistics from `benchmark_model` output (stdout and stderr together).

    Args:
        text: the tool's output.

    Raises:
        BenchmarkOutputError: no timing line was found; the message quotes the last lines.
    """
    timings = _timing_line(text)
    regular, profiled = _stat_lines(text)
    run_stats = regular[-1] if regular else profiled
    warmup_stats = regular[0] if len(regular) > 1 else None
    mean_us = timings.get("inference") if timings else None
    if mean_us is None and run_stats and "avg" in run_stats:
        mean_us = run_stats["avg"]
    if mean_us is None:
        raise BenchmarkOutputError(f"benchmark_model printed no inference timings; its last lines: {_quote(text)}")
    run_stats = run_stats or {}
    ops, op_types = _op_tables(text)
    return Measurement(
        mean_ms=mean_us / 1000.0,
        std_ms=_ms(run_stats.get("std")),
        count=None if "count" not in run_stats else int(run_stats["count"]),
        median_ms=_ms(run_stats.get("median")),
        min_ms=_ms(run_stats.get("min")),
        max_ms=_ms(run_stats.get("max")),
        init_ms=_ms(timings.get("init")),
        first_ms=_ms(timings.get("first", warmup_stats.get("first") if warmup_stats else None)),
        warmup_mean_ms=_ms(timings.get("warmup")),
        ops=tuple(ops),
        op_types=tuple(op_types),
    )


def _ms(value_us: float | None) -> float | None:
    return None if value_us is None else value_us / 1000.0


def _timing_line(text: str) -> dict[str, float]:
    """Init / first / warm-up / inference microseconds of the summary line (last one wins)."""
    current = _CURRENT.findall(text)
    if current:
        init, first, warmup, inference = (float(v) for v in current[-1])
        return {"init": init, "first": first, "warmup": warmup, "inference": inference}
    older = _OLDER.findall(text)
    if older:
        warmup, init, inference = (float(v) for v in older[-1])
        return {"init": init, "warmup": warmup, "inference": inference}
    return {}


def _sections(text: str) -> Iterator[tuple[str, str]]:
    """(section, line) pairs: "main", or "init_profile" / "run_profile" inside op-profiling output."""
    section = "main"
    for line in text.splitlines():
        if _INIT_PROFILE in line and _RUN_PROFILE not in line:
            section = "init_profile"
        elif _RUN_PROFILE in line:
            section = "run_profile"
        elif _TABLE_TITLE.search(line) and section == "main":
            section = "run_profile"  # old tools print the tables without a section header
        yield section, line


def _stat_lines(text: str) -> tuple[list[dict[str, float]], dict[str, float] | None]:
    """The `count=... avg=...` lines of the main output, and the regular runs' `Timings (microseconds)` line."""
    regular: list[dict[str, float]] = []
    profiled = None
    for section, line in _sections(text):
        if not _STATS.search(line):
            continue
        values = {key: float(value) for key, value in _KEY_VALUE.findall(line)}
        if "Timings (microseconds)" in line:
            if section == "run_profile":
                profiled = values
        elif section == "main":
            regular.append(values)
    return regular, profiled


def _op_tables(text: str) -> tuple[list[OpProfile], list[OpProfile]]:
    """Rows of the regular runs' `Run Order` and `Summary by node type` tables."""
    tables: dict[str, list[OpProfile]] = {"Run Order": [], "Summary by node type": []}
    title = columns = None
    for section, line in _sections(text):
        heading = _TABLE_TITLE.search(line)
        if heading:
            title, columns = heading.group(1), None
        elif section != "run_profile" or title not in tables:
            continue
        elif not line.strip():
            title = None
        elif columns is None:
            columns = [c.lower() for c in re.findall(r"\[([^\]]+)\]", line)]
        else:
            row = _table_row(columns, line)
            if row is not None:
                tables[title].append(row)
    return tables["Run Order"], tables["Summary by node type"]


def _table_row(columns: list[str], line: str) -> OpProfile | None:
    fields = [f for f in re.split(r"\t|\s{2,}", line.strip()) if f]
    if len(fields) != len(columns):
        return None
    row = dict(zip(columns, fields))
    try:
        return OpProfile(
            node_type=row["node type"],
            avg_ms=float(row["avg ms"]),
            percent=float(row.get("%", row.get("avg %", "0")).rstrip("%")),
            times_called=int(float(row.get("times called", row.get("count", "0")))),
            name=row.get("name", "").strip("[]"),
        )
    except (KeyError, ValueError):
        return None


def _quote(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "(no output)"
    return " | ".join(repr(line[:200]) for line in lines[-_QUOTED_LINES:])
