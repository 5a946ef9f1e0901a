"""The supernet commands: info, convert-official, train and finetune."""

from __future__ import annotations

import os
from typing import Any

import click

from ofa_tf.cli.common import ARCH_OPTION, import_library
from ofa_tf.space.registry import family_names


def _describe_space(arch: str, width_mult: float | None, n_classes: int):
    """(space, lines describing it) for `ofa-tf info`."""
    from ofa_tf.space.registry import make_space

    space = make_space(arch, width_mult, n_classes=n_classes)
    lines = [*space.describe(), f"subnets: {space.n_subnets:.3e} (x {len(space.resolutions)} resolutions "
             f"{space.resolutions[0]}..{space.resolutions[-1]} step 4)"]
    return space, lines


@click.command()
@click.option("--width-mult", type=float, default=None, help="Supernet width multiplier (default: the released one, 1.0 / 1.3).")
@click.option("--resolution", type=int, default=224, show_default=True, help="Input resolution for the MAC counts.")
@click.option("--n-classes", type=int, default=1000, show_default=True, help="Classifier outputs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random subnet shown.")
@click.option(
    "--arch", type=click.Choice(family_names()), default="mbv3", show_default=True,
    help="Supernet family: OFA-MobileNetV3, OFA-ProxylessNAS or OFA-ResNet50-D.",
)
def info(width_mult: float | None, resolution: int, n_classes: int, seed: int, arch: str):
    """Print the search space and the MACs/params of the min, max and a random subnet.

    \b
    Examples:
      ofa-tf info --width-mult 1.0 --resolution 160
      ofa-tf info --arch proxyless
      ofa-tf info --arch resnet50
    """
    import numpy as np

    from rich.console import Console
    from rich.table import Table

    ofa_tf = import_library()
    from ofa_tf.supernet.counting import count_costs

    if resolution < 8:
        raise ofa_tf.ConfigError(f"--resolution {resolution} is too small: use at least 8 pixels, e.g. 224")
    space, lines = _describe_space(arch, width_mult, n_classes)
    console = Console()
    for line in lines:
        console.print(line)
    table = Table(title=f"at {resolution}x{resolution}")
    for column in ("subnet", "MACs (M)", "params (M)"):
        table.add_column(column)
    random_config = space.sample(np.random.default_rng(seed))
    rows = [("min", space.min_config()), ("max", space.max_config()), (f"random (seed {seed})", random_config)]
    for label, config in rows:
        macs, params = count_costs(space, config, resolution)
        table.add_row(label, f"{macs / 1e6:.1f}", f"{params / 1e6:.2f}")
    console.print(table)
    click.echo(f"random subnet: {random_config.to_json()}")


@click.command("convert-official")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.argument("out", type=click.Path())
@click.option("--width-mult", type=float, default=None, help="Width multiplier (inferred from the tensors by default).")
@click.option(
    "--specialized",
    "net_config",
    type=click.Path(dir_okay=False),
    default=None,
    help="An official specialized network's net.config: CHECKPOINT holds its weights and OUT is the .keras to write.",
)
@click.option(
    "--resolution", type=click.IntRange(32, 1024), default=None,
    help="Input size of a --specialized network (default: the image_size of the run.config beside NET_CONFIG, else 224).",
)
def convert_official(checkpoint: str, out: str, width_mult: float | None, net_config: str | None, resolution: int | None):
    """Convert an official OFA checkpoint: a supernet into an ofa-tf supernet folder, or
    (--specialized) a specialized network into a .keras of stock layers.

    Needs PyTorch to read the .pth file: pip install "ofa-tf[pytorch]".

    \b
    Examples:
      ofa-tf convert-official ofa_mbv3_d234_e346_k357_w1.2 supernets/w1.2
      ofa-tf convert-official --specialized note10_lat@22ms/net.config note10_lat@22ms/init note10_22ms.keras
    """
    ofa_tf = import_library()
    from ofa_tf.interop.official import from_official_checkpoint, load_official_state_dict
    from ofa_tf.interop.specialized import load_net_config, zoo_resolution
    from ofa_tf.layers.net_config import from_official_specialized
    from ofa_tf.io import atomic_save_model, atomic_write_json

    if net_config is not None:
        if width_mult is not None:
            raise ofa_tf.ConfigError("--width-mult is for supernets: a --specialized network's widths are in its net.config")
        if not out.endswith(".keras"):
            raise ofa_tf.ConfigError(f"OUT {out} must end in .keras: a specialized network is saved as one .keras file")
        config = load_net_config(net_config)
        resolution = resolution or zoo_resolution(net_config) or 224
        model = from_official_specialized(config, load_official_state_dict(checkpoint), resolution)
        atomic_save_model(model, out)
        macs = ofa_tf.count_model_macs(model)
        sidecar = os.path.splitext(out)[0] + ".net.json"  # not OUT.json: `ofa-tf export` writes that beside OUT.tflite
        atomic_write_json(sidecar, {
            "family": model.name, "resolution": resolution, "macs": macs,
            "source": {"net_config": os.path.abspath(net_config), "weights": os.path.abspath(checkpoint)},
            "net_config": config,
        })
        click.echo(f"converted {model.name} of {net_config} at {resolution} px ({model.count_params():,} parameters, "
                   f"{macs / 1e6:.1f}M MACs) -> {out} (config in {sidecar})")
        return
    net = from_official_checkpoint(checkpoint, width_mult=width_mult)
    ofa_tf.save_supernet(net, out, source={"official_checkpoint": os.path.abspath(checkpoint)})
    space = net.space
    click.echo(
        f"converted {checkpoint}: {space.summary} -> {out}"
    )


# Options whose flag is not `--` + the field name with dashes.
_FLAG_NAMES = {"max_steps_per_phase": "--max-steps", "checkpoint_every": "--checkpoint-every", "family": "--arch"}


class _RichReporter:
    """Progress bar per phase and an evaluation table at each phase end."""

    def __init__(self):
        from rich.console import Console

        self.console = Console()
        self.progress = None

    def phase_start(self, phase, index, total_steps, start_step):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self.progress = Progress(
            TextColumn(f"[bold]{index + 1}. {phase.name:9s}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(phase.name, total=total_steps, completed=start_step, status="tracing the step...")

    def step(self, metrics):
        status = f"loss {metrics['loss']:.3f}  lr {metrics['lr']:.4f}  {metrics['images_per_second']:.0f} img/s"
        if metrics.get("skipped_images"):
            status += f"  {metrics['skipped_images']} unreadable images skipped"
        self.progress.update(self.task, completed=metrics["step"], status=status)

    def phase_end(self, phase, evaluation):
        from rich.table import Table

        self.progress.stop()
        statistics = "trained BN statistics" if phase.trains_one_subnet else "BN recalibrated"
        table = Table(title=f"{phase.name}: top-1 %", caption=f"test split, {statistics}")
        resolutions = sorted({row["resolution"] for row in evaluation})
        table.add_column("subnet")
        for resolution in resolutions:
            table.add_column(f"{resolution}px", justify="right")
        for label in ("min", "mid", "max"):
            values = {row["resolution"]: row["top1"] for row in evaluation if row["subnet"] == label}
            table.add_row(label, *(f"{values[r]:.1f}" for r in resolutions))
        self.console.print(table)


def _resumed_config(resume_dir: str, flags: dict[str, Any], given_once: list[str]):
    """The saved config of the run to resume with the flags `--resume` may change; None when the
    run finished and nothing extends it."""
    from pathlib import Path

    from ofa_tf.errors import ConfigError
    from ofa_tf.training import config as train_config
    from ofa_tf.training.config import RESUMABLE_OPTIONS
    from ofa_tf.training.trainer import load_run_config

    fixed = [f"--{name}" for name in given_once]
    fixed += [_FLAG_NAMES.get(name, f"--{name.replace('_', '-')}") for name in flags if name not in RESUMABLE_OPTIONS]
    if fixed:
        changeable = ", ".join(_FLAG_NAMES[name] for name in RESUMABLE_OPTIONS)
        raise ConfigError(
            f"--resume continues a run with its saved config.json: {', '.join(fixed)} cannot change "
            f"(only {changeable} can); start a new run with --out to change them"
        )
    finished = (Path(resume_dir) / "supernet" / "supernet.json").is_file()  # saved when the last phase ends
    if finished and "max_steps_per_phase" not in flags:
        click.echo(
            f"{resume_dir} finished all its phases: nothing to resume (its supernet is in {resume_dir}/supernet; "
            "--max-steps N continues its last phase to N steps)"
        )
        return None
    return train_config.apply_overrides(load_run_config(resume_dir), flags)


def _new_run_config(out_dir, preset, init_dir, phases, config_file, flags: dict[str, Any]):
    """(The config of a new run in `out_dir`, which must be new or empty: the preset (transfer with
    `--init`), the pretrained supernet's architecture, the config file, the flags, the phases kept;
    the config file's options)."""
    from pathlib import Path

    from ofa_tf.errors import ConfigError
    from ofa_tf.training import config as train_config

    if out_dir is None:
        raise click.UsageError("give --out RUN_DIR (or --resume RUN_DIR)")
    if Path(out_dir).exists() and any(Path(out_dir).iterdir()):
        raise ConfigError(
            f"--out {out_dir} exists and is not empty: continue it with --resume {out_dir} or choose a new folder"
        )
    overrides = train_config.load_overrides(config_file) if config_file else {}
    pretrained = {}
    if init_dir is not None:
        from ofa_tf.training.run_folder import open_run
        from ofa_tf.training.transfer import pretrained_space

        flags["init"] = str(open_run(init_dir).supernet_dir)
        pretrained = pretrained_space(flags["init"])
        if flags.get("family", pretrained["family"]) != pretrained["family"]:
            raise ConfigError(f"--init {init_dir} is a {pretrained['family']} supernet: leave out --arch")
    elif preset == "transfer":
        raise ConfigError("--preset transfer fine-tunes a pretrained supernet: give --init SUPERNET_DIR")
    config = _preset_config(preset or ("transfer" if init_dir else "cifar"), flags, overrides, pretrained)
    if phases:
        config = train_config.select_phases(config, [p for p in phases.split(",") if p])
    return config, overrides


def _preset_config(preset: str, flags: dict, overrides: dict, pretrained: dict):
    """The preset for the run's family; a pretrained supernet's card (`pretrained`, from --init)
    gives its width, choice lists and resolutions, which --config and flags may still change."""
    from ofa_tf.training import config as train_config
    from ofa_tf.training.presets import PRESETS
    from ofa_tf.training.transfer import pretrained_architecture

    family = flags.get("family") or overrides.get("family") or pretrained.get("family") or "mbv3"
    config = PRESETS[preset](family, pretrained_architecture(pretrained) if pretrained else None)
    trained_at = {"resolutions": pretrained["resolutions"]} if pretrained else {}
    return train_config.apply_overrides(config, {**trained_at, **overrides, **flags})


def _strategy(distribute: str):
    import tensorflow as tf

    if distribute == "mirrored":
        return tf.distribute.MirroredStrategy()
    if distribute == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise click.UsageError("--distribute multi-worker needs TF_CONFIG describing the cluster and this worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


@click.command()
@click.option("--data", default=None, help="'bundled' (default), a folder of class sub-folders, TFRecords or tfds:NAME.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Run folder to create.")
@click.option(
    "--preset", type=click.Choice(["cifar", "paper", "transfer"]), default=None,
    help="Schedule and sizes: cifar (default), paper (ImageNet), transfer (default with --init).",
)
@click.option(
    "--init", "init_dir", type=click.Path(file_okay=False), default=None,
    help="Start from this pretrained supernet (a run or supernet folder): new classifier if the classes differ.",
)
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None, help="YAML/JSON overrides.")
@ARCH_OPTION
@click.option("--width-mult", type=float, default=None)
@click.option("--resolutions", default=None, help="Comma-separated elastic resolutions, e.g. 24,28,32.")
@click.option("--batch-size", type=int, default=None, help="Global batch size.")
@click.option(
    "--holdout-images", type=int, default=None,
    help="Training images kept out for the accuracy predictor (default: the preset's, at most a fifth of the data).",
)
@click.option("--max-steps", type=int, default=None, help="Cap on the steps of every phase (smoke runs).")
@click.option("--phases", default=None, help="Comma-separated phases to run, e.g. teacher,kernel.")
@click.option("--teacher", type=click.Path(file_okay=False), default=None, help="Supernet folder of a trained full network.")
@click.option("--seed", type=int, default=None)
@click.option("--checkpoint-every", type=int, default=None, help="Steps between checkpoints.")
@click.option("--mixed-precision", is_flag=True, default=None, help="Compute in bfloat16 (accelerators with bf16 units).")
@click.option(
    "--deterministic", is_flag=True, default=None,
    help="Bitwise-reproducible run: deterministic ops, every seed fixed (slower; see the README).",
)
@click.option("--distribute", type=click.Choice(["none", "mirrored", "multi-worker"]), default="none", show_default=True)
@click.option(
    "--resume", "resume_dir", type=click.Path(file_okay=False), default=None,
    help="Continue a run where it stopped (--max-steps and --checkpoint-every may change).",
)
def train(data, out_dir, preset, init_dir, config_file, arch, width_mult, resolutions, batch_size, holdout_images, max_steps, phases, teacher, seed, checkpoint_every, mixed_precision, deterministic, distribute, resume_dir):
    """Train an OFA supernet with progressive shrinking and knowledge distillation.

    \b
    Example (a few minutes on 2 CPU cores, the bundled CIFAR-10 subset):
      ofa-tf train --preset cifar --out runs/cifar
      ofa-tf train --resume runs/cifar          # after an interruption
      ofa-tf train --resume runs/quick --max-steps 50   # a smoke run: its last phase continues to 50 steps
      ofa-tf train --arch proxyless --out runs/proxyless
      ofa-tf train --arch resnet50 --out runs/resnet50   # teacher, depth, expand, width phases
      ofa-tf train --init runs/cifar --data my_photos --out runs/mine   # transfer to your classes
    """
    import_library(initialize_devices=distribute != "multi-worker")
    from pathlib import Path

    from ofa_tf.training.trainer import ProgressiveShrinkingTrainer

    flags = dict(
        data=data, family=arch, width_mult=width_mult, resolutions=resolutions, batch_size=batch_size,
        holdout_images=holdout_images, max_steps_per_phase=max_steps, seed=seed, checkpoint_every=checkpoint_every, teacher=teacher,
        mixed_precision=mixed_precision, deterministic=deterministic,
    )
    flags = {k: v for k, v in flags.items() if v is not None}
    if resume_dir is not None:
        given_once = (("out", out_dir), ("config", config_file), ("phases", phases), ("init", init_dir), ("preset", preset))
        config, overrides = _resumed_config(resume_dir, flags, [name for name, given in given_once if given]), {}
        if config is None:
            return
        out_dir = resume_dir
    else:
        config, overrides = _new_run_config(out_dir, preset, init_dir, phases, config_file, flags)
    # a preset's hold-out is sized for its dataset: capped at a fifth of the user's; one given is kept
    cap_holdout = resume_dir is None and "holdout_images" not in {**overrides, **flags}
    trainer = ProgressiveShrinkingTrainer(
        config, out_dir, strategy=_strategy(distribute), reporter=_RichReporter(), cap_holdout=cap_holdout
    )
    if trainer.config.holdout_images < config.holdout_images:
        n_train = trainer.source.n_train + trainer.config.holdout_images
        click.echo(f"holding out {trainer.config.holdout_images} of the {n_train} training images for the accuracy "
                   f"predictor (the preset's {config.holdout_images}, capped at a fifth of the data; --holdout-images "
                   f"sets another)")
    trainer.run()
    if trainer.source.counter.count:
        click.echo(f"skipped {trainer.source.counter.count} unreadable images (each pass over the data that read them counts them)", err=True)
    click.echo(f"supernet saved to {Path(out_dir) / 'supernet'}; metrics in {Path(out_dir) / 'metrics.jsonl'}")


@click.command()
@click.argument("subnet", type=click.Path(exists=True))
@click.option("--data", required=True, help="The new task's images: a folder of class sub-folders, TFRecords or tfds:NAME.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Subnet folder to create.")
@click.option("--epochs", type=float, default=10, show_default=True, help="Passes over the training images.")
@click.option("--lr", type=float, default=0.01, show_default=True, help="Learning rate at the start of the cosine decay.")
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--crop-scale", default=None,
              help="Area range of the training crops, e.g. 0.08,1 (default: the source supernet's training crops).")
@click.option("--teacher", "teacher_dir", type=click.Path(file_okay=False), default=None,
              help="A supernet of the data's classes (e.g. from `train --init`): distill from its largest subnet.")
@click.option("--seed", type=int, default=0, show_default=True)
def finetune(subnet, data, out_dir, epochs, lr, batch_size, crop_scale, teacher_dir, seed):
    """Adapt an extracted subnet to new classes: a new classifier, then fine-tuning.

    \b
    Writes OUT/subnet.keras and OUT/subnet.json, which `ofa-tf export` and `ofa-tf bench` take:
      ofa-tf finetune runs/cifar/specialized/8M-MACs --data my_photos --out runs/mine_8M
      ofa-tf export runs/mine_8M --quantize int8 --out mine_int8.tflite
    """
    import_library()
    from pathlib import Path

    from ofa_tf.data.sources import open_source
    from ofa_tf.errors import ConfigError
    from ofa_tf.training.finetune import FinetuneConfig
    from ofa_tf.training.subnet_transfer import require_trainable, transfer_subnet

    if Path(out_dir).exists() and any(Path(out_dir).iterdir()):
        raise ConfigError(f"--out {out_dir} exists and is not empty: choose a new folder")
    if epochs <= 0 or lr <= 0 or batch_size < 1:
        raise ConfigError("--epochs and --lr must be > 0 and --batch-size >= 1")
    source = open_source(data)
    require_trainable(source, batch_size)
    config = FinetuneConfig(
        epochs=epochs, batch_size=batch_size, base_lr=lr, seed=seed,
        crop_scale=_finetune_crop_scale(subnet, crop_scale), kd_ratio=1.0 if teacher_dir else 0.0,
    )
    teacher = _finetune_teacher(teacher_dir, source, data, subnet, config) if teacher_dir else None
    summary = transfer_subnet(subnet, source, data, out_dir, config, teacher, teacher_dir, log=click.echo)
    report = summary["finetune"]
    before = "" if report["top1_before"] is None else f" (before: {report['top1_before']:.1f}%)"
    click.echo(f"test top-1 {report['top1_after']:.1f}%{before} after {report['steps']} steps in "
               f"{report['seconds']:.0f} s -> {Path(out_dir)}")


def _finetune_crop_scale(subnet: str, given: str | None) -> tuple[float, ...]:
    """--crop-scale, else the training crops of the run the subnet was specialized from, else the reference's."""
    from pathlib import Path

    from ofa_tf.data.transforms import DEFAULT_CROP_SCALE
    from ofa_tf.io import read_json
    from ofa_tf.errors import ConfigError
    from ofa_tf.training.run_folder import open_run

    if given is not None:
        try:
            scale = tuple(float(v) for v in given.split(","))
        except ValueError:
            scale = ()
        if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
            raise ConfigError(f"--crop-scale {given}: expected two area fractions 0 < min <= max <= 1, e.g. 0.08,1")
        return scale
    summary = Path(subnet) / "subnet.json" if Path(subnet).is_dir() else Path(subnet).with_name("subnet.json")
    supernet = read_json(summary, "run `ofa-tf specialize` again for this subnet").get("provenance", {}).get("supernet") if summary.is_file() else None
    run_root = Path(supernet).parent if supernet else None
    if run_root is not None and (run_root / "config.json").is_file():
        return open_run(run_root).crop_scale()
    return DEFAULT_CROP_SCALE


def _finetune_teacher(teacher_dir: str, source, data: str, subnet: str, config):
    """The largest subnet of a supernet of the data's classes at the subnet's resolution, its BN
    statistics recalibrated on the data."""
    from ofa_tf.supernet.extract import extract_subnet
    from ofa_tf.io import load_model
    from ofa_tf.supernet.storage import load_supernet
    from ofa_tf.training.run_folder import open_run
    from ofa_tf.training.evaluation import SubnetEvaluator

    run = open_run(teacher_dir)
    run.open_data(data, 0)  # refuses a supernet of other classes, naming how to adapt it
    net = load_supernet(run.supernet_dir)
    resolution = int(load_model(subnet).inputs[0].shape[1])
    evaluator = SubnetEvaluator(net, source.recalibration_images(min(500, source.n_train), seed=config.seed), 100,
                                config.seed, config.crop_scale)
    evaluator.recalibrate(net.space.max_config(), resolution)
    return extract_subnet(net, net.space.max_config(resolution), name="teacher")
