"""Deployment budgets: "600M-MACs", "1.2G-MACs", "5M-params", "25ms@note10" (several, comma-separated)."""

from __future__ import annotations

import dataclasses
import re

from ofa_tf.errors import ConfigError

GRAMMAR = "e.g. 600M-MACs, 1.2G-MACs, 5M-params or 25ms@<latency table or device>"
_SCALE = {"": 1.0, "K": 1e3, "M": 1e6, "G": 1e9}
_COUNT = re.compile(r"^(?P<value>\d+(?:\.\d+)?)(?P<scale>[KMG]?)-(?P<kind>MACs|params)$", re.IGNORECASE)
_LATENCY = re.compile(r"^(?P<value>\d+(?:\.\d+)?)ms@(?P<lut>.+)$", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Budget:
    """An upper bound on one efficiency measure.

    Args:
        kind: "macs", "params" or "latency".
        limit: MACs or parameters (absolute counts), or milliseconds.
        lut: for latency: the lookup table (file or device name).
        text: the budget as written.
    """

    kind: str
    limit: float
    lut: str | None
    text: str


def parse_budget(text: str) -> Budget:
    """Parses one budget; raises ConfigError naming the expected grammar."""
    cleaned = text.strip()
    match = _COUNT.match(cleaned)
    if match:
        limit = float(match["value"]) * _SCALE[match["scale"].upper()]
        kind = "macs" if match["kind"].lower() == "macs" else "params"
        budget = Budget(kind, limit, None, cleaned)
    else:
        match = _LATENCY.match(cleaned)
        if not match:
            raise ConfigError(f"budget {text!r} is not understood: expected {GRAMMAR}")
        budget = Budget("latency", float(match["value"]), match["lut"], cleaned)
    if budget.limit <= 0:
        raise ConfigError(f"budget {text!r} must be positive ({GRAMMAR})")
    return budget


def parse_budgets(text: str) -> list[Budget]:
    """Parses comma-separated budgets ("200M-MACs,400M-MACs")."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ConfigError(f"no budget given: expected {GRAMMAR}")
    return [parse_budget(part) for part in parts]
