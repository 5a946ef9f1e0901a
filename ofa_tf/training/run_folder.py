"""What `--supernet RUN_DIR` points at: a training run, or a bare supernet folder.

A training run (`ofa-tf train --out RUN_DIR`) holds `supernet/`, its
`config.json` (data, hold-out split, resolutions) and, after the predictor
commands, `predictor/`. A bare supernet folder (`ofa-tf convert-official`)
holds only the weights and card; data and resolutions then come from flags.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Sequence

from ofa_tf.data.sources import ImageSource, open_source, require_classes
from ofa_tf.data.transforms import DEFAULT_CROP_SCALE
from ofa_tf.errors import ConfigError, MissingFileError
from ofa_tf.io import read_json
from ofa_tf.supernet.storage import CARD_FILE
from ofa_tf.training.config import TrainConfig
from ofa_tf.training.trainer import CONFIG_FILE, SUPERNET_DIR, load_run_config

PREDICTOR_DIR = "predictor"
REFERENCE_PREDICTOR_RESOLUTIONS = (128, 160, 192, 224)


@dataclasses.dataclass
class RunFolder:
    """A supernet and what is known about how it was trained.

    Args:
        root: the folder given (predictor/ and luts/ live here).
        supernet_dir: the supernet weights and card.
        train_config: the training config, for training runs (None for bare supernets).
    """

    root: Path
    supernet_dir: Path
    train_config: TrainConfig | None

    @property
    def predictor_dir(self) -> Path:
        return self.root / PREDICTOR_DIR

    def default_resolutions(self) -> tuple[int, ...]:
        """The training resolutions of a run, else the reference predictor's."""
        return tuple(self.train_config.resolutions) if self.train_config else REFERENCE_PREDICTOR_RESOLUTIONS

    def crop_scale(self) -> tuple[float, ...]:
        """The crops BN statistics are recalibrated on: the run's training crops, else the reference's."""
        return tuple(self.train_config.crop_scale) if self.train_config else DEFAULT_CROP_SCALE

    def n_classes(self) -> int:
        """The supernet's classifier outputs, from its card."""
        return int(self._card["config"]["n_classes"])

    def search_space(self) -> dict:
        """The search space the supernet's card records (family, width, choice lists, resolutions)."""
        return self._card["search_space"]

    @functools.cached_property
    def _card(self) -> dict:
        return read_json(self.supernet_dir / CARD_FILE, "save the supernet again (`ofa-tf train` writes it when its last phase ends)")

    def data_name(self, data: str | None) -> str:
        """`--data` if given, else the run's training data; a bare supernet records none (bundled)."""
        if data is not None:
            return data
        return (self.train_config.data if self.train_config else None) or "bundled"

    def open_data(self, data: str | None, holdout_images: int | None) -> tuple[ImageSource, object]:
        """(training source without the hold-out split, hold-out examples).

        A training run's own data and hold-out split are the defaults, so the
        predictor is measured on images the supernet never trained on. Data
        whose classes differ from the supernet's is refused (ConfigError).
        """
        config = self.train_config
        source = open_source(self.data_name(data))
        require_classes(
            source, self.n_classes(), f"the supernet in {self.supernet_dir}",
            f"ofa-tf train --init {self.root} --data {self.data_name(data)} --out RUN",
        )
        if holdout_images is None:
            holdout_images = config.holdout_images if config else min(10_000, source.n_train // 10)
        seed = config.seed if config else 0
        return source.split_holdout(holdout_images, seed)


def open_run(path: str | os.PathLike) -> RunFolder:
    """Recognizes a training run or a bare supernet folder; a clear error otherwise."""
    root = Path(path)
    if (root / SUPERNET_DIR / CARD_FILE).is_file():
        config = load_run_config(root) if (root / CONFIG_FILE).is_file() else None
        return RunFolder(root, root / SUPERNET_DIR, config)
    if (root / CARD_FILE).is_file():
        return RunFolder(root, root, None)
    raise MissingFileError(
        f"{path} is neither a training run (with {SUPERNET_DIR}/) nor a supernet folder ({CARD_FILE}): "
        "make one with `ofa-tf train --out DIR` or `ofa-tf convert-official`"
    )


def parse_resolutions(text: str, available: Sequence[int] | None = None) -> tuple[int, ...]:
    """'24,28,32' or a range '160-224' (step 4, or the `available` resolutions inside it)."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            if available is not None:
                values = tuple(r for r in available if low <= r <= high)
            else:
                values = tuple(range(low, high + 1, 4))
        else:
            values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--resolutions {text!r}: expected a list like 160,192,224 or a range like 160-224") from None
    if not values or min(values) < 8:
        raise ConfigError(f"--resolutions {text!r} selects no resolution >= 8 px (available: {list(available or [])})")
    return values
