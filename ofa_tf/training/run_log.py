"""A training run's log: one JSON record per line in `metrics.jsonl`, and TensorBoard scalars."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ofa_tf._backend import tf

METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"


class RunLog:
    """Appends records to `run_dir/metrics.jsonl`; steps and evaluations also go to TensorBoard.

    Args:
        run_dir: the run folder.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._writer = None

    def write(self, record: dict[str, Any], step: int) -> None:
        """Appends `record` (its "event": "step", "evaluation", ...) at global step `step`."""
        with open(self.run_dir / METRICS_FILE, "a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.run_dir / TENSORBOARD_DIR))
        with self._writer.as_default():
            if record["event"] == "step":
                for key in ("loss", "lr", "images_per_second", "skipped_images"):
                    tf.summary.scalar(f"train/{key}", record[key], step=step)
            elif record["event"] == "evaluation":
                for row in record["rows"]:
                    tf.summary.scalar(f"top1/{row['subnet']}_{row['resolution']}px", row["top1"], step=step)
        self._writer.flush()
