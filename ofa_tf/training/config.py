"""Training configuration: phases of progressive shrinking, presets, overrides.

A run is a list of phases. Each phase restricts the elastic choices that are
sampled (kernel, expand, depth lists), has its own epochs, base learning rate,
warm-up and number of subnets per step, and may first re-organize the middle
channels (before the expand phases). The first phase trains the full network
that becomes the distillation teacher.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Sequence

from ofa_tf.errors import ConfigError, MissingFileError
from ofa_tf.space.registry import Space, choice_fields, family_names, make_space, space_class


@dataclasses.dataclass(frozen=True)
class PhaseConfig:
    """One phase of progressive shrinking.

    Args:
        name: phase name (teacher, kernel, depth_1, depth_2, expand_1, expand_2; width for ResNets).
        choices: the values sampled in this phase, per choice name of the family's search space
            ("ks" kernel sizes, "e" expand ratios, "d" depths, "w" ResNet width multipliers).
        epochs: epochs after warm-up (cosine decay runs over these).
        warmup_epochs: linear warm-up epochs, added before `epochs`.
        base_lr: learning rate per 64 images (scaled linearly with the global batch).
        subnets_per_step: subnets sampled per step on the same batch (gradients summed).
        kd: whether to distill from the teacher.
        reorganize_stage: run `re_organize_middle_weights(stage)` first (None: no).
        trains: "all" variables, or only the "classifier" (the rest frozen, BN statistics still
            following the data: a new head on a pretrained network).
    """

    name: str
    choices: dict[str, tuple]
    epochs: float
    warmup_epochs: float
    base_lr: float
    subnets_per_step: int
    kd: bool = True
    reorganize_stage: int | None = None
    trains: str = "all"

    @property
    def trains_one_subnet(self) -> bool:
        """Whether every step trains the same subnet (one value per choice), e.g. the teacher."""
        return all(len(values) <= 1 for values in self.choices.values())


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A whole training run.

    Args:
        data: "bundled", a folder of class sub-folders of images, TFRecord files, or "tfds:NAME".
        family: the supernet family, "mbv3" (OFA-MobileNetV3), "proxyless" (OFA-ProxylessNAS)
            or "resnet50" (OFA-ResNet50-D).
        width_mult: supernet width multiplier (MBConv families).
        choices: the supernet's elastic choices by name, as `PhaseConfig.choices` (a family's
            own names only: OFA-ResNet50-D has "d", "e", "w" and no kernels).
        resolutions: resolutions sampled per batch.
        crop_scale: area range of the random resized crop (reference: 0.08-1).
        eval_resolutions: resolutions of the end-of-phase evaluation.
        batch_size: global batch size.
        label_smoothing: of the hard-label cross-entropy.
        kd_ratio: weight of the soft-target cross-entropy.
        momentum / nesterov / weight_decay: SGD (decay off BN and biases).
        dropout_rate: before the classifier.
        bn_recalibration_images / bn_recalibration_batch: evaluation BN reset.
        holdout_images: training images kept out of training (fixed for the seed) to measure
            subnets for the accuracy predictor (reference: 10,000 of ImageNet train).
        seed: seeds data order, augmentation, resolutions and subnet sampling.
        checkpoint_every: steps between checkpoints (and at each phase end).
        max_steps_per_phase: cap for smoke runs (None: the epochs decide).
        mixed_precision: compute in bfloat16 (variables, BN and losses stay float32); for
            accelerators with bfloat16 units: on a CPU without them it is slower.
        deterministic: deterministic TensorFlow ops, so that a rerun, or a run killed and
            resumed, ends with bitwise-equal weights (initial weights, data order,
            augmentation, subnets and dropout follow the seed in every run).
        phases: the phases, in order.
        teacher: supernet folder of a trained full network, for runs that skip the teacher phase.
        init: supernet folder whose weights every phase starts from (transfer learning): its
            classifier is kept when the classes match, replaced by a new one otherwise.
    """

    data: str = "bundled"
    family: str = "mbv3"
    width_mult: float = 1.0
    choices: dict[str, tuple] = dataclasses.field(default_factory=lambda: {"ks": (3, 5, 7), "e": (3, 4, 6), "d": (2, 3, 4)})
    resolutions: tuple[int, ...] = tuple(range(128, 225, 4))
    crop_scale: tuple[float, ...] = (0.08, 1.0)
    eval_resolutions: tuple[int, ...] = (160, 224)
    batch_size: int = 2048
    label_smoothing: float = 0.1
    kd_ratio: float = 1.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 3e-5
    dropout_rate: float = 0.1
    bn_recalibration_images: int = 2000
    bn_recalibration_batch: int = 200
    holdout_images: int = 10_000
    seed: int = 0
    checkpoint_every: int = 500
    max_steps_per_phase: int | None = None
    mixed_precision: bool = False
    deterministic: bool = False
    phases: tuple[PhaseConfig, ...] = ()
    teacher: str | None = None
    init: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def space(self, n_classes: int) -> Space:
        """The supernet's search space for a task of `n_classes` classes."""
        lists = {choice_fields()[name]: values for name, values in self.choices.items()}
        return make_space(self.family, self.width_mult, n_classes=n_classes, resolutions=self.resolutions, **lists)


# What a phase may train: every variable, or the classifier alone.
PHASE_TRAINS = ("all", "classifier")

# What `--resume` may change: neither alters what a step computes.
RESUMABLE_OPTIONS = ("max_steps_per_phase", "checkpoint_every")


def load_overrides(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a YAML or JSON file of TrainConfig fields (phases as a list of dicts)."""
    import yaml

    if not os.path.isfile(path):
        raise MissingFileError(f"config file {path} does not exist")
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)  # YAML is a superset of JSON
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is neither valid YAML nor JSON ({error.__class__.__name__})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of training options, e.g. 'batch_size: 64'")
    return data


def _number(value: Any) -> int | float:
    """An int where the value is integral (expand ratio 4), else a float (0.25)."""
    number = float(value)
    return int(number) if number.is_integer() else number


def _as_tuple(name: str, value: Any, kind=int) -> tuple:
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    if not isinstance(value, (list, tuple)):
        value = [value]
    try:
        return tuple(kind(v) for v in value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}={value!r}: expected a list of numbers like 3,5,7") from None


_TUPLE_FIELDS = ("resolutions", "eval_resolutions")


def split_choices(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, tuple]]:
    """(`data` without its choice entries, the choices by name). A choice is given by name in
    `choices` ({"d": [2, 3]}) or by the search space's field ("depth_list": [2, 3], as a
    supernet card and the command line name it); empty lists are left out."""
    fields = choice_fields()
    names = {field: name for name, field in fields.items()}
    data = dict(data)
    given = data.pop("choices", None) or {}
    if not isinstance(given, dict):
        raise ConfigError(f"choices={given!r}: expected a mapping of choice names to values, e.g. {{d: [2, 3]}}")
    unknown = sorted(set(given) - set(fields))
    if unknown:
        raise ConfigError(f"unknown choices {unknown}: the choice names are {sorted(fields)}")
    choices = dict(given)
    for field, name in names.items():
        if field in data:
            choices[name] = data.pop(field)
    parsed = {name: _as_tuple(fields[name], values, _number) for name, values in choices.items()}
    return data, {name: values for name, values in parsed.items() if values}


def apply_overrides(config: TrainConfig, overrides: dict[str, Any]) -> TrainConfig:
    """Returns `config` with fields replaced; unknown keys and bad values raise ConfigError.

    New `resolutions` without `eval_resolutions` make the evaluation follow
    them: their smallest and largest.
    """
    changes, choices = split_choices(overrides)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(changes) - known)
    if unknown:
        raise ConfigError(f"unknown training options {unknown}: valid ones are {sorted(known | set(choice_fields().values()))}")
    if choices:
        changes["choices"] = {**config.choices, **choices}
    for name in _TUPLE_FIELDS:
        if name in changes:
            changes[name] = _as_tuple(name, changes[name])
    if changes.get("resolutions") and "eval_resolutions" not in changes:
        changes["eval_resolutions"] = tuple(sorted({min(changes["resolutions"]), max(changes["resolutions"])}))
    if "crop_scale" in changes:
        changes["crop_scale"] = _as_tuple("crop_scale", changes["crop_scale"], float)
    if "phases" in changes:
        changes["phases"] = tuple(_phase_from_dict(p) for p in changes["phases"])
    return validate(dataclasses.replace(config, **changes))


def _phase_from_dict(data: Any) -> PhaseConfig:
    if isinstance(data, PhaseConfig):
        return data
    if not isinstance(data, dict):
        raise ConfigError(f"a phase must be a mapping of PhaseConfig fields, got {data!r}")
    data, choices = split_choices(data)
    known = {f.name for f in dataclasses.fields(PhaseConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"unknown phase options {unknown}: valid ones are {sorted(known | set(choice_fields().values()))}")
    try:
        return PhaseConfig(**data, choices=choices)
    except TypeError as error:
        raise ConfigError(f"phase {data.get('name', '?')}: {error}") from None


def select_phases(config: TrainConfig, names: Sequence[str]) -> TrainConfig:
    """Keeps the named phases (in the preset's order)."""
    available = [p.name for p in config.phases]
    missing = [n for n in names if n not in available]
    if missing:
        raise ConfigError(f"unknown phases {missing}: this preset has {available}")
    return dataclasses.replace(config, phases=tuple(p for p in config.phases if p.name in names))


def _require_family_choices(choices: dict[str, tuple], family: str, where: str = "") -> None:
    foreign = [name for name in choices if name not in {choice.name for choice in space_class(family).CHOICES}]
    if foreign:
        raise ConfigError(f"{where}{choice_fields()[foreign[0]]} is not a choice of {family} supernets: leave it out")


def validate(config: TrainConfig) -> TrainConfig:
    """Checks every value a run depends on; raises ConfigError naming the first bad one."""
    if len(config.crop_scale) != 2 or not 0 < config.crop_scale[0] <= config.crop_scale[1] <= 1:
        raise ConfigError(f"crop_scale={config.crop_scale}: expected two area fractions 0 < min <= max <= 1, e.g. 0.08,1")
    if config.batch_size < 1:
        raise ConfigError(f"batch_size={config.batch_size}: must be >= 1, e.g. 64")
    if config.width_mult <= 0:
        raise ConfigError(f"width_mult={config.width_mult}: must be > 0, e.g. 1.0")
    if config.family not in family_names():
        raise ConfigError(f"family={config.family!r}: expected one of {list(family_names())}")
    _require_family_choices(config.choices, config.family)
    config.space(n_classes=1)  # choice lists and width the family's search space accepts
    if not config.phases:
        raise ConfigError("no phases to run: choose some with --phases, e.g. teacher,kernel")
    if not config.resolutions or not config.eval_resolutions:
        raise ConfigError("resolutions and eval_resolutions need at least one value each, e.g. 24,28,32")
    if any(r < 8 for r in config.resolutions + config.eval_resolutions):
        raise ConfigError(f"resolutions {config.resolutions}: each must be >= 8 pixels")
    if config.checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every={config.checkpoint_every}: must be >= 1")
    if config.max_steps_per_phase is not None and config.max_steps_per_phase < 1:
        raise ConfigError(f"max_steps_per_phase={config.max_steps_per_phase}: must be >= 1")
    supernet_choices = config.choices
    for phase in config.phases:
        _require_family_choices(phase.choices, config.family, f"phase {phase.name}: ")
        for choice in supernet_choices:
            name = choice_fields()[choice]
            values = phase.choices.get(choice, ())
            if not values:
                raise ConfigError(f"phase {phase.name}: {name} is empty: give at least one value")
            extra = sorted(set(values) - set(supernet_choices[choice]))
            if extra:
                raise ConfigError(f"phase {phase.name}: {name} {extra} not in the supernet's {list(supernet_choices[choice])}")
        if phase.trains not in PHASE_TRAINS:
            raise ConfigError(f"phase {phase.name}: trains={phase.trains!r}: expected one of {list(PHASE_TRAINS)}")
        if phase.epochs <= 0 or phase.warmup_epochs < 0 or phase.base_lr <= 0 or phase.subnets_per_step < 1:
            raise ConfigError(
                f"phase {phase.name}: epochs > 0, warmup_epochs >= 0, base_lr > 0 and subnets_per_step >= 1 are required"
            )
    return config


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuilds a TrainConfig saved with `to_dict` (e.g. a run's config.json).

    Runs saved before the hold-out split existed trained on every image: holdout_images=0.
    """
    return apply_overrides(TrainConfig(choices={}), {"holdout_images": 0, **data})  # the choices are all saved
