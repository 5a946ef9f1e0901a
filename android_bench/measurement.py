"""What one latency benchmark of one model yields, whatever ran it (phone or host)."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class OpProfile:
    """One row of an op-profiling table (`--enable_op_profiling`).

    Args:
        node_type: TFLite op or delegate kernel, e.g. "CONV_2D".
        avg_ms: average time per run.
        percent: share of the run time.
        times_called: calls per run (in the "Summary by node type" table: node count).
        name: node name ("" in the summary table).
    """

    node_type: str
    avg_ms: float
    percent: float
    times_called: int
    name: str = ""


@dataclasses.dataclass(frozen=True)
class Measurement:
    """Latency statistics of the timed (post-warm-up) runs of one model, in milliseconds.

    Args:
        mean_ms: mean latency.
        std_ms: standard deviation (None when the tool did not print it).
        count: number of timed runs (None when unknown).
        median_ms: median latency (None when unknown).
        min_ms: fastest run.
        max_ms: slowest run.
        init_ms: interpreter initialization time.
        first_ms: first inference.
        warmup_mean_ms: mean of the warm-up runs.
        ops: op-profiling rows in run order (empty without profiling).
        op_types: op-profiling summary by node type.
    """

    mean_ms: float
    std_ms: float | None = None
    count: int | None = None
    median_ms: float | None = None
    min_ms: float | None = None
    max_ms: float | None = None
    init_ms: float | None = None
    first_ms: float | None = None
    warmup_mean_ms: float | None = None
    ops: tuple[OpProfile, ...] = ()
    op_types: tuple[OpProfile, ...] = ()

    def lut_entry(self) -> dict[str, Any]:
        """The value of a latency-table key: `mean`, `std`, `count` (and `median` when known), in ms."""
        entry: dict[str, Any] = {"mean": round(self.mean_ms, 6)}
        if self.std_ms is not None:
            entry["std"] = round(self.std_ms, 6)
        if self.count is not None:
            entry["count"] = int(self.count)
        if self.median_ms is not None:
            entry["median"] = round(self.median_ms, 6)
        return entry

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)
