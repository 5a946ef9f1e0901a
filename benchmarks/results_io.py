"""Writes a benchmark's measurements as JSON and a markdown table under benchmarks/results/."""

from __future__ import annotations

import datetime
import platform
from pathlib import Path
from typing import Any, Sequence

from ofa_tf.io import atomic_write_json, atomic_write_text

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_info() -> dict[str, Any]:
    import os

    import tensorflow as tf

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }


def write_results(name: str, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], extra: dict) -> Path:
    """Saves `results/<name>.json` and `results/<name>.md`; returns the markdown path."""
    data = {"benchmark": name, "machine": machine_info(), "columns": list(columns), "rows": rows, **extra}
    atomic_write_json(RESULTS_DIR / f"{name}.json", data)
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    lines += ["", *(f"- {key}: {value}" for key, value in extra.items()), f"- machine: {data['machine']}", ""]
    return atomic_write_text(RESULTS_DIR / f"{name}.md", "\n".join(lines))
