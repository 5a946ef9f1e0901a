"""Training presets: progressive shrinking schedules for any family (the reference's ImageNet
recipe, the bundled CIFAR-10 main job, transfer to new classes), built from per-choice steps."""

from __future__ import annotations

import dataclasses
from typing import Any

from ofa_tf.space.registry import make_space, space_class
from ofa_tf.training.config import PhaseConfig, TrainConfig, split_choices


@dataclasses.dataclass(frozen=True)
class ShrinkStep:
    """A phase opening one elastic choice further, in a preset's schedule.

    Args:
        name: phase name.
        keep: how many of the choice's largest values it samples (None: all).
        epochs / warmup_epochs / base_lr / subnets_per_step / reorganize_stage: as `PhaseConfig`.
    """

    name: str
    keep: int | None
    epochs: float
    warmup_epochs: float
    base_lr: float
    subnets_per_step: int
    reorganize_stage: int | None = None


def shrinking_phases(
    choices: dict[str, tuple], teacher: ShrinkStep, steps: dict[str, tuple[ShrinkStep, ...]]
) -> tuple[PhaseConfig, ...]:
    """Progressive shrinking over any family's choices: the teacher (largest value of every
    choice, no distillation), then the steps of each choice in the family's order (`choices`,
    as the space's `CHOICES`), each keeping the choices opened before it fully open."""
    sampled = {name: values[-1:] for name, values in choices.items()}

    def phase(step: ShrinkStep, kd: bool = True) -> PhaseConfig:
        return PhaseConfig(
            step.name, dict(sampled), epochs=step.epochs, warmup_epochs=step.warmup_epochs, base_lr=step.base_lr,
            subnets_per_step=step.subnets_per_step, kd=kd, reorganize_stage=step.reorganize_stage,
        )

    phases = [phase(teacher, kd=False)]
    for name, values in choices.items():
        for step in steps[name]:
            sampled[name] = values if step.keep is None else values[-step.keep:]
            phases.append(phase(step))
    return tuple(phases)


def _family_config(
    family: str,
    steps: dict[str, tuple[ShrinkStep, ...]],
    teacher: ShrinkStep,
    architecture: dict[str, Any] | None,
    max_depth: int | None = None,
    **fields: Any,
) -> TrainConfig:
    """A preset for `family`: its released choice lists (depths capped at `max_depth`), `fields` and
    phases; `architecture` (width_mult, choice lists: a pretrained supernet's) replaces the first two."""
    choices = dict(make_space(family).choice_values)
    if max_depth is not None:
        choices["d"] = tuple(d for d in choices["d"] if d <= max_depth)
    given, given_choices = split_choices(architecture or {})
    given = {name: tuple(v) if isinstance(v, list) else v for name, v in given.items()}
    config = TrainConfig(family=family, **{**fields, **given}, choices={**choices, **given_choices})
    return dataclasses.replace(config, phases=shrinking_phases(config.choices, teacher, steps))


def paper_preset(family: str = "mbv3", architecture: dict[str, Any] | None = None) -> TrainConfig:
    """ImageNet hyper-parameters of the reference (train_ofa_net.py, 32 GPUs x 64 images).

    The reference starts from a downloaded full-network checkpoint and ships no
    recipe for it; the teacher phase here (180 epochs at the kernel phase's LR)
    is our choice, marked as such. Upstream ships no schedule for ResNets: their
    depth and expand phases take the MBConv ones, the width phase (ours) the
    second expand phase's.
    """
    steps = {
        "ks": (ShrinkStep("kernel", None, 120, 5, 3e-2, 1),),
        "d": (ShrinkStep("depth_1", 2, 25, 0, 2.5e-3, 2), ShrinkStep("depth_2", None, 120, 5, 7.5e-3, 2)),
        "e": (ShrinkStep("expand_1", 2, 25, 0, 2.5e-3, 4, 0), ShrinkStep("expand_2", None, 120, 5, 7.5e-3, 4, 1)),
        "w": (ShrinkStep("width", None, 120, 5, 7.5e-3, 4),),
    }
    return _family_config(family, steps, ShrinkStep("teacher", None, 180, 0, 3e-2, 1), architecture, batch_size=2048)


def cifar_preset(family: str = "mbv3", architecture: dict[str, Any] | None = None) -> TrainConfig:
    """About 7 minutes on 2 CPU cores: the bundled CIFAR-10 subset, width 0.5, depth <= 3, 40-56 px.

    Chosen by measurement (benchmarks/README.md, "The main job's preset"): the 32 px
    images are upsampled, since at 24-32 px the full network ends on 1x1 maps;
    stages of at most 3 blocks, since a depth-4 full network learns too slowly for
    a 6-epoch teacher; batch 32 and crops of 80-100% of the image (the reference's
    8% lower bound is for ImageNet), which learn fastest. With two depth choices one
    depth phase covers both of the reference's. Families whose widths are choices
    (ResNet50-D) keep their whole width; their depths (blocks beyond the base ones)
    are all at most 3.
    """
    steps = {
        "ks": (ShrinkStep("kernel", None, 1, 0, 0.05, 1),),
        "d": (ShrinkStep("depth", None, 1, 0, 0.02, 2),),
        "e": (ShrinkStep("expand_1", 2, 0.5, 0, 0.01, 2, 0), ShrinkStep("expand_2", None, 1, 0, 0.01, 2, 1)),
        "w": (ShrinkStep("width", None, 1, 0, 0.01, 2),),
    }
    return _family_config(
        family, steps, ShrinkStep("teacher", None, 6, 0, 0.05, 1), architecture,
        width_mult=0.5 if space_class(family).SCALABLE_WIDTH else 1.0,
        max_depth=3,
        resolutions=(40, 48, 56),
        crop_scale=(0.8, 1.0),
        eval_resolutions=(40, 56),
        batch_size=32,
        bn_recalibration_images=1000,
        bn_recalibration_batch=200,
        holdout_images=1000,
        checkpoint_every=100,
    )


def transfer_preset(family: str = "mbv3", architecture: dict[str, Any] | None = None) -> TrainConfig:
    """Fine-tuning a pretrained supernet (`init`) on new classes: the cifar preset's sizes,
    a schedule made for a network that already has features.

    First the new classifier alone (the pretrained features frozen, their BN statistics
    following the new images), then a short fine-tune of the full network at a fifth of the
    cifar teacher's learning rate, then short elastic phases distilled from it. The phases'
    lengths are in epochs: a small dataset gets few steps. The supernet's family, width,
    choices and resolutions come from `init` (the CLI reads its card); chosen by
    measurement in benchmarks/bench_transfer.py (5 unseen CIFAR-10 classes, 100 images each:
    specialized subnets 8-13 points above the same number of steps from scratch; the head
    phase measured neutral there, kept so that a random head's first gradients do not reach
    the pretrained features).
    """
    steps = {
        "ks": (ShrinkStep("kernel", None, 2, 0, 0.01, 1),),
        "d": (ShrinkStep("depth", None, 2, 0, 0.005, 2),),
        "e": (ShrinkStep("expand_1", 2, 1, 0, 0.005, 2, 0), ShrinkStep("expand_2", None, 2, 0, 0.005, 2, 1)),
        "w": (ShrinkStep("width", None, 2, 0, 0.005, 2),),
    }
    config = cifar_preset(family, architecture)
    shrinking = shrinking_phases(config.choices, ShrinkStep("teacher", None, 8, 0, 0.01, 1), steps)
    head = dataclasses.replace(shrinking[0], name="head", epochs=2, base_lr=0.05, trains="classifier")
    return dataclasses.replace(config, phases=(head, *shrinking))


PRESETS = {"paper": paper_preset, "cifar": cifar_preset, "transfer": transfer_preset}
