"""`ofa-tf predictor build|train` and `ofa-tf specialize`: thin commands over `ofa_tf.nas`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from ofa_tf.errors import ConfigError, MissingFileError


def _load(run_path: str):
    """(run folder, supernet) with TensorFlow imported quietly."""
    from ofa_tf.cli.common import import_library

    import_library()
    from ofa_tf.supernet.storage import load_supernet
    from ofa_tf.training.run_folder import open_run

    run = open_run(run_path)
    return run, load_supernet(run.supernet_dir)


def _evaluator(net, run, source, images: int, batch: int, seed: int):
    """BN recalibration on training images cropped as the run trained (a mismatch costs points)."""
    from ofa_tf.training.evaluation import SubnetEvaluator

    return SubnetEvaluator(net, source.recalibration_images(images, seed=seed), batch, seed, run.crop_scale())


@click.group()
def predictor():
    """Accuracy predictor: measure random subnets, then fit the MLP.

    \b
      ofa-tf predictor build --supernet runs/cifar --n-subnets 200
      ofa-tf predictor train --supernet runs/cifar
    """


# `predictor build` options -> the dataset field they set: left out on a rerun, the saved value is kept
_RESUMED_OPTIONS = {"resolutions": "resolutions", "seed": "seed", "bn_images": "bn_recalibration_images",
                    "sampling": "sampling"}


def _resumed_settings(config, path: Path, context: click.Context):
    """`config` with the settings of the dataset being resumed at `path` wherever the command line left
    them out, so that growing a build needs only `--n-subnets`."""
    import json

    from click.core import ParameterSource

    if not path.is_file():
        return config
    try:
        saved = json.loads(path.read_text())["config"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return config  # load_records names the problem
    kept = {field: saved[field] for option, field in _RESUMED_OPTIONS.items()
            if field in saved and context.get_parameter_source(option) == ParameterSource.DEFAULT}
    if "resolutions" in kept:
        kept["resolutions"] = tuple(kept["resolutions"])
    return dataclasses.replace(config, **kept)


@predictor.command()
@click.option("--supernet", "run_path", required=True, type=click.Path(), help="Training run or supernet folder.")
@click.option("--n-subnets", type=int, default=1000, show_default=True, help="Random subnets, each at every resolution.")
@click.option("--resolutions", default=None, help="e.g. 24,28,32 (default: the run's training resolutions).")
@click.option("--data", default=None, help="Images (default: the run's data).")
@click.option("--holdout-images", type=int, default=None, help="Held-out training images (default: the run's split).")
@click.option("--bn-images", type=int, default=2000, show_default=True, help="BN recalibration images per subnet.")
@click.option("--sampling", type=click.Choice(["size-spread", "uniform"]), default="size-spread", show_default=True,
              help="Subnets spread from small to large, or uniform per choice (the reference's: nearly all mid-sized).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, help="Default: RUN_DIR/predictor.")
def build(run_path, n_subnets, resolutions, data, holdout_images, bn_images, sampling, seed, out_dir):
    """Measures random subnets on the hold-out split (resumable: rerun to continue)."""
    run, net = _load(run_path)
    from rich.progress import Progress

    from ofa_tf.nas.accuracy_dataset import DATASET_FILE, AccuracyDatasetConfig, build_accuracy_dataset
    from ofa_tf.training.run_folder import parse_resolutions

    source, holdout = run.open_data(data, holdout_images)
    chosen = parse_resolutions(resolutions) if resolutions else run.default_resolutions()
    config = AccuracyDatasetConfig(n_subnets, chosen, seed, min(bn_images, source.n_train), 200, sampling)
    path = Path(out_dir or run.predictor_dir) / DATASET_FILE
    config = _resumed_settings(config, path, click.get_current_context())
    evaluator = _evaluator(net, run, source, config.bn_recalibration_images, config.bn_recalibration_batch, config.seed)
    with Progress() as progress:
        task = progress.add_task("measuring subnets", total=n_subnets * len(chosen))
        records = build_accuracy_dataset(
            net.space, lambda subnet, r: evaluator.top1(subnet, r, holdout), config, path,
            progress=lambda done, total: progress.update(task, completed=done),
        )
    top1 = [r["top1"] for r in records]
    click.echo(f"{len(records)} measurements (top-1 {min(top1):.1f}..{max(top1):.1f}%) in {path}")


@predictor.command()
@click.option("--supernet", "run_path", required=True, type=click.Path(), help="Training run or supernet folder.")
@click.option("--dir", "predictor_dir", type=click.Path(file_okay=False), default=None, help="Default: RUN_DIR/predictor.")
@click.option("--epochs", type=int, default=500, show_default=True, help="Upper bound (early stopping).")
@click.option("--seed", type=int, default=0, show_default=True)
def train(run_path, predictor_dir, epochs, seed):
    """Fits the 3x400 MLP; reports RMSE and Kendall's tau on held-out subnets."""
    from ofa_tf.cli.common import import_library

    import_library()
    from ofa_tf.io import read_json
    from ofa_tf.nas.accuracy_dataset import DATASET_FILE
    from ofa_tf.nas.accuracy_predictor import save_accuracy_predictor
    from ofa_tf.nas.predictor_training import PredictorTrainingConfig, fit_accuracy_predictor
    from ofa_tf.space.registry import space_from_dict
    from ofa_tf.training.run_folder import open_run

    run = open_run(run_path)
    directory = Path(predictor_dir or run.predictor_dir)
    dataset_path = directory / DATASET_FILE
    if not dataset_path.is_file():
        raise MissingFileError(f"{dataset_path} is missing: run `ofa-tf predictor build --supernet {run_path}` first")
    dataset = read_json(dataset_path, f"remove it and run `ofa-tf predictor build --supernet {run_path}` again")
    resolutions = tuple(dataset["config"]["resolutions"])
    space = space_from_dict(run.search_space())
    space = dataclasses.replace(space, resolutions=resolutions)  # the card names what was measured
    config = PredictorTrainingConfig(epochs=epochs, seed=seed)
    predictor, metrics = fit_accuracy_predictor(space, dataset["records"], resolutions, config)
    save_accuracy_predictor(predictor, directory, metrics)
    click.echo(
        f"held-out subnets: RMSE {metrics['rmse_top1']:.2f} top-1 points (mean-accuracy baseline "
        f"{metrics['baseline_rmse_top1']:.2f}), Kendall's tau {metrics['kendall_tau']:.3f}; saved to {directory}"
    )


def _open_predictor(spec: str | None, run, space):
    """The predictor named by --predictor: a folder (default RUN_DIR/predictor) or official:FILE.pth."""
    if spec and spec.startswith("official:"):
        from ofa_tf.interop.official_nas import load_official_accuracy_predictor

        return load_official_accuracy_predictor(spec.removeprefix("official:"), space), spec
    from ofa_tf.nas.accuracy_predictor import load_accuracy_predictor

    directory = Path(spec) if spec else run.predictor_dir
    return load_accuracy_predictor(directory, space), str(directory)


@click.command()
@click.option("--supernet", "run_path", required=True, type=click.Path(), help="Training run or supernet folder.")
@click.option("--budget", "budget_text", required=True, help="600M-MACs, 1.2G-MACs, 5M-params, 25ms@LUT; comma-separated for several.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="One sub-folder per budget.")
@click.option("--predictor", "predictor_spec", default=None, help="Predictor folder (default RUN_DIR/predictor) or official:FILE.pth.")
@click.option("--resolutions", default=None, help="Resolutions to search, e.g. 160-224 or 24,32 (default: the predictor's).")
@click.option("--lut", "lut_files", multiple=True, type=click.Path(dir_okay=False), help="Latency table YAML (repeatable).")
@click.option("--data", default=None, help="Images for BN recalibration and the test measurement (default: the run's).")
@click.option("--generations", type=int, default=500, show_default=True)
@click.option("--population", type=int, default=100, show_default=True)
@click.option("--bn-images", type=int, default=2000, show_default=True, help="BN recalibration images.")
@click.option("--no-recalibrate", is_flag=True,
              help="Keep the supernet's stored BN statistics (then a bare supernet without --data is not measured).")
@click.option("--finalists", type=int, default=0, show_default=True,
              help="Measure up to N candidates per budget (the predictor's choice, smaller budgets' winners, the best "
                   "predicted per cost band up to the budget) on the hold-out split and ship the best measured; 0 trusts "
                   "the predictor, as the reference.")
@click.option("--finetune-epochs", type=int, default=0, show_default=True, help="KD fine-tuning of each subnet.")
@click.option("--finetune-lr", type=float, default=0.005, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def specialize(run_path, budget_text, out_dir, predictor_spec, resolutions, lut_files, data, generations, population,
               bn_images, no_recalibrate, finalists, finetune_epochs, finetune_lr, seed):
    """Finds, extracts and reports the best subnet for each budget.

    \b
      ofa-tf specialize --supernet runs/cifar --budget 20M-MACs,40M-MACs --out runs/cifar/specialized
      ofa-tf specialize --supernet ofa_w1 --predictor official:acc_predictor.pth --budget 25ms@note10 \\
          --resolutions 160-224 --out subnets
    """
    from ofa_tf.nas.budget import parse_budgets

    budgets = parse_budgets(budget_text)  # before loading anything: a typo fails at once
    if generations < 1 or population < 4:
        raise ConfigError("--generations must be >= 1 and --population >= 4")
    if finalists < 0:
        raise ConfigError(f"--finalists {finalists}: give 0 (trust the predictor) or the number of candidates to measure")
    run, net = _load(run_path)
    from ofa_tf.nas.efficiency_predictor import efficiency_model
    from ofa_tf.nas.specialize import SearchConfig, specialize as run_specialize
    from ofa_tf.training.run_folder import parse_resolutions
    from ofa_tf.training.finetune import FinetuneConfig

    predictor, predictor_name = _open_predictor(predictor_spec, run, net.space)
    known = predictor.encoder.resolutions if predictor.encoder.layout == "library" else None
    chosen = parse_resolutions(resolutions, known) if resolutions else tuple(known or range(160, 225, 4))
    if known is not None and not set(chosen) <= set(known):
        raise ConfigError(f"--resolutions {list(chosen)}: the predictor knows only {list(known)}; search among those")
    space = dataclasses.replace(net.space, resolutions=chosen)
    models = [efficiency_model(b, space, lut_files, search_dirs=[run.root, "."]) for b in budgets]
    unmeasured = no_recalibrate and data is None and run.train_config is None  # no data is known: none is needed
    if unmeasured and finetune_epochs:
        raise ConfigError("--finetune-epochs trains on images: give --data with the supernet's own")
    if finalists > 1 and (unmeasured or no_recalibrate):
        raise ConfigError("--finalists measures candidates after BN recalibration on the run's data: drop --no-recalibrate")
    source, holdout = (None, None) if unmeasured else run.open_data(data, None)
    evaluator = None if no_recalibrate else _evaluator(net, run, source, min(bn_images, source.n_train), 200, seed)
    finetune_config = (
        FinetuneConfig(epochs=finetune_epochs, base_lr=finetune_lr, crop_scale=run.crop_scale(), seed=seed)
        if finetune_epochs
        else None
    )
    provenance = {"supernet": str(run.supernet_dir), "predictor": predictor_name,
                  "data": None if unmeasured else run.data_name(data)}
    run_specialize(
        net, space, predictor, source, budgets, models, out_dir, evaluator,
        SearchConfig(population, generations, seed, finalists), finetune_config, provenance, progress=click.echo,
        holdout=holdout,
    )
