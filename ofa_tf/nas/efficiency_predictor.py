"""Efficiency models for the search: exact MACs / params, or a latency lookup table."""

from __future__ import annotations

import dataclasses
import glob
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ofa_tf.supernet.counting import efficiency_table
from ofa_tf.errors import ConfigError
from ofa_tf.nas.budget import Budget
from ofa_tf.nas.latency_table import LatencyTable
from ofa_tf.space.choices import ArchRows
from ofa_tf.space.registry import Space

UNITS = {"macs": "MACs", "params": "params", "latency": "ms"}


@dataclasses.dataclass
class EfficiencyModel:
    """A batch cost function and its name.

    Args:
        kind: "macs", "params" or "latency".
        cost: ArchRows -> [N] costs (resolution taken from the rows).
        source: where latency entries came from (empty for counts).
    """

    kind: str
    cost: Callable[[ArchRows], np.ndarray]
    source: str = ""

    def feasible_range(self, space: Space) -> tuple[float, float]:
        """(cost of the smallest subnet at the smallest resolution, of the largest at the largest)."""
        low = space.to_indices([space.min_config(min(space.resolutions))])
        high = space.to_indices([space.max_config(max(space.resolutions))])
        return float(self.cost(low)[0]), float(self.cost(high)[0])

    def describe(self, value: float) -> str:
        """'412.3M MACs', '2.005M MACs', '2.91M params' or '18.40 ms': digits enough that a budget
        of 2M and a smallest subnet of 2,005,016 MACs do not both read as '2.0M'."""
        if self.kind == "latency":
            return f"{value:.2f} ms"
        digits = 1 if value >= 1e8 else 3
        return f"{value / 1e6:.{digits}f}M {UNITS[self.kind]}"


def find_latency_tables(name: str, search_dirs: Sequence[str | os.PathLike]) -> list[str]:
    """YAML files of a latency budget's table: a file, a folder of per-resolution files, or a device name.

    A device name `NAME` is looked up as `luts/NAME.yaml` or `luts/NAME/*.yaml`
    under each of `search_dirs`.
    """
    if os.path.isfile(name):
        return [name]
    if os.path.isdir(name):
        files = sorted(glob.glob(os.path.join(name, "*.yaml")))
        if files:
            return files
    for directory in search_dirs:
        luts = Path(directory) / "luts"
        if (luts / f"{name}.yaml").is_file():
            return [str(luts / f"{name}.yaml")]
        files = sorted(glob.glob(str(luts / name / "*.yaml")))
        if files:
            return files
    raise ConfigError(
        f"no latency table {name!r}: pass --lut FILE.yaml, or build luts/{name}.yaml with `ofa-tf bench lut`"
    )


def efficiency_model(
    budget: Budget, space: Any, lut_files: Sequence[str] = (), search_dirs: Sequence[str | os.PathLike] = (".",)
) -> EfficiencyModel:
    """The cost function a budget is measured with.

    Args:
        budget: the parsed budget.
        space: the search space (of any family, with the resolutions to search).
        lut_files: explicit latency tables (`--lut`); else the budget's `@name` is looked up.
        search_dirs: folders whose `luts/` may hold the named table.
    """
    counts = efficiency_table(space)
    if budget.kind == "macs":
        return EfficiencyModel("macs", counts.macs)
    if budget.kind == "params":
        return EfficiencyModel("params", counts.params)
    files = list(lut_files) or find_latency_tables(budget.lut, search_dirs)
    table = LatencyTable.from_yaml(space, *files)
    missing = [r for r in space.resolutions if not table.covers(r)]
    if missing:
        raise ConfigError(
            f"latency table {', '.join(files)} has no entries for resolutions {missing}: search with "
            f"--resolutions among the covered ones or extend the table with `ofa-tf bench lut`"
        )
    from ofa_tf.nas.latency_correction import load_correction

    correction = load_correction(files[0]) if len(files) == 1 else None
    if correction is None:
        return EfficiencyModel("latency", table.latency, ", ".join(files))
    # `ofa-tf bench validate` stored a linear fit of measured vs summed latency beside the table.
    corrected = lambda arch: correction.apply(table.latency(arch))  # noqa: E731
    return EfficiencyModel("latency", corrected, f"{files[0]} (with its measured linear correction)")
