"""`ofa-tf bench`: latency on an Android phone (adb + benchmark_model) or on this CPU (LiteRT)."""

from __future__ import annotations

import contextlib
import dataclasses
from pathlib import Path
from typing import Any, Callable, Iterator

import click

from ofa_tf.space.registry import family_names

DEVICE_HELP = "host (this CPU, LiteRT), adb (the only connected phone) or adb:SERIAL."


def _device_options(command: Callable) -> Callable:
    options = [
        click.option("--device", default="host", show_default=True, help=DEVICE_HELP),
        click.option("--adb", "adb_path", default=None, help="adb executable (default: on PATH or in $ANDROID_HOME)."),
        click.option(
            "--benchmark-binary",
            default=None,
            type=click.Path(dir_okay=False),
            help="Android benchmark_model binary to push (phone only; see docs/android_bench.md).",
        ),
        click.option("--num-threads", type=int, default=1, show_default=True),
        click.option("--warmup-runs", type=int, default=5, show_default=True),
        click.option("--num-runs", type=int, default=50, show_default=True),
        click.option("--use-xnnpack/--no-xnnpack", default=None, help="Force XNNPACK on/off (default: the tool's)."),
        click.option("--use-gpu", is_flag=True, help="GPU delegate (phone only)."),
        click.option("--use-nnapi", is_flag=True, help="NNAPI delegate (phone only)."),
        click.option("--cpu-mask", default=None, help="taskset core mask in hex, e.g. f0 for big cores (phone only)."),
        click.option(
            "--host-clock",
            type=click.Choice(["wall", "cpu"]),
            default="wall",
            show_default=True,
            help="Host only: elapsed time, or CPU time of the calling thread (1 thread; robust on a busy machine).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _open_backend(options: dict[str, Any], enable_op_profiling: bool = False):
    from ofa_tf.android_bench.backend import BenchSettings
    from ofa_tf.android_bench.devices import open_backend

    settings = BenchSettings(
        num_threads=options["num_threads"],
        warmup_runs=options["warmup_runs"],
        num_runs=options["num_runs"],
        use_xnnpack=options["use_xnnpack"],
        use_gpu=options["use_gpu"],
        use_nnapi=options["use_nnapi"],
        enable_op_profiling=enable_op_profiling,
        cpu_mask=options["cpu_mask"],
        host_clock=options["host_clock"],
    )
    backend = open_backend(options["device"], settings, options["adb_path"], options["benchmark_binary"])
    return settings, backend


@contextlib.contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int, str], None]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(
        TextColumn(f"[bold]{label}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        TextColumn("{task.fields[item]}"),
    ) as progress:
        task = progress.add_task(label, total=None, item="")

        def update(done: int, total: int, item: str) -> None:
            progress.update(task, completed=done, total=total, item=item[:60])

        yield update


def _resolutions(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated integers, e.g. 160,176,192") from None
    if not values:
        raise click.BadParameter("give at least one resolution")
    return values


@click.group()
def bench():
    """Measure latency on an Android phone (adb + benchmark_model) or on this CPU (LiteRT).

    \b
    Examples:
      ofa-tf bench devices
      ofa-tf bench lut --device host --width-mult 1.0 --resolutions 128 --out luts/host.yaml
      ofa-tf bench lut --device adb --benchmark-binary android_aarch64_benchmark_model --out luts/pixel7.yaml
      ofa-tf bench validate --lut luts/host.yaml --device host --width-mult 1.0 --resolution 128 --n 50
      ofa-tf bench model subnet.tflite --device adb:SERIAL --benchmark-binary benchmark_model
    """


@bench.command()
@click.option("--adb", "adb_path", default=None, help="adb executable (default: on PATH or in $ANDROID_HOME).")
def devices(adb_path: str | None):
    """List the Android devices adb sees and whether they can be used."""
    from ofa_tf.android_bench.adb import list_devices

    found = list_devices(adb_path)
    if not found:
        click.echo("no Android device connected (enable USB debugging and plug the phone in)")
    for device in found:
        usable = "ready" if device.state == "device" else device.state
        click.echo(f"{device.serial}\t{usable}\t{device.properties.get('model', '')}")


@bench.command()
@click.argument("model_file", type=click.Path(exists=True, dir_okay=False))
@_device_options
@click.option("--enable-op-profiling", is_flag=True, help="Per-op timings (phone only).")
@click.option(
    "--json", "json_path", default=None, type=click.Path(dir_okay=False), help="Also write the statistics to this JSON file."
)
def model(model_file: str, enable_op_profiling: bool, json_path: str | None, **options):
    """Time one TFLite model.

    \b
    Example:
      ofa-tf bench model subnet.tflite --device host --num-threads 2 --json latency.json
    """
    _, backend = _open_backend(options, enable_op_profiling)
    result = backend.measure(Path(model_file).read_bytes(), model_file)
    if json_path:
        from ofa_tf.io import atomic_write_json

        settings = {key: value for key, value in options.items() if key != "adb_path"}
        atomic_write_json(json_path, {"model": model_file, **settings, **dataclasses.asdict(result)})
    spread = "" if result.std_ms is None else f" ± {result.std_ms:.3f}"
    runs = "" if result.count is None else f" over {result.count} runs"
    click.echo(f"{model_file}: {result.mean_ms:.3f}{spread} ms{runs} on {options['device']}")
    for label, value in (("median", result.median_ms), ("min", result.min_ms), ("max", result.max_ms),
                         ("init", result.init_ms), ("first inference", result.first_ms)):
        if value is not None:
            click.echo(f"  {label}: {value:.3f} ms")
    for op in result.op_types:
        click.echo(f"  {op.node_type:40s} {op.avg_ms:9.3f} ms {op.percent:6.2f}%  x{op.times_called}")


@bench.command()
@_device_options
@click.option(
    "--supernet", "supernet_dir", type=click.Path(file_okay=False), default=None,
    help="A run or supernet folder: its family, width, resolutions (a run: those it trained at) and classes (default out RUN/luts/host.yaml).",
)
@click.option(
    "--arch", type=click.Choice(sorted(family_names())), default=None,
    help="Supernet family (default: the --supernet's, else mbv3; resnet50: its widths are choices, so --width-mult stays 1.0).",
)
@click.option("--width-mult", type=float, default=None, help="Supernet width multiplier (default: the --supernet's, else 1.0).")
@click.option("--resolutions", default=None,
              help="Comma-separated resolutions (default: the --supernet card's: a run's training ones, else 160,176,192,208,224).")
@click.option("--n-classes", type=int, default=None, help="Classifier outputs (default: the --supernet's, else 1000).")
@click.option(
    "--quantize",
    type=click.Choice(["int8"]),
    default=None,
    help="Time full-integer layer models (as `ofa-tf export --quantize int8 --int8-io`; default float32).",
)
@click.option(
    "--depthwise-forms",
    default="plain,windows5,windows3,dilated",
    show_default=True,
    help="Forms each key with a 7x7 depthwise kernel is timed in (as it is, as sums of 5x5 / 3x3 windows, crop-free "
    "(dilated: a 5x5 plus five dilated 3x3 kernels at stride 1, the four input phases at stride 2); "
    "the fastest is recorded and `ofa-tf export --target` applies it.",
)
@click.option("--out", "out_path", default=None, type=click.Path(dir_okay=False),
              help="Table to write, luts/NAME.yaml (`--budget Xms@NAME` finds it in the run's or this folder's luts/).")
def lut(supernet_dir: str | None, arch: str | None, width_mult: float | None, resolutions: str | None, n_classes: int | None,
        quantize: str | None, depthwise_forms: str, out_path: str | None, **options):
    """Build a latency lookup table (official OFA YAML) by timing one small model per key.

    Resumable: rerun the same command after an interruption and only the
    missing keys are measured.

    \b
    Example:
      ofa-tf bench lut --supernet runs/cifar --device host        # runs/cifar/luts/host.yaml, for 2ms@host
      ofa-tf bench lut --device host --width-mult 1.0 --resolutions 128 --out luts/host_w1.0.yaml
      ofa-tf bench lut --device host --quantize int8 --resolutions 128 --out luts/host_w1.0_int8.yaml
    """
    from ofa_tf.cli.common import import_library

    import_library()
    from ofa_tf.android_bench.lut import LutConfig, build_lut

    out_path = out_path or _default_table_path(supernet_dir, options["device"], quantize)
    space = _supernet_space(supernet_dir) if supernet_dir else {}
    settings, backend = _open_backend(options)
    forms = tuple(form.strip() for form in depthwise_forms.split(",") if form.strip())
    config = LutConfig(
        width_mult if width_mult is not None else space.get("width_mult", 1.0),
        _resolutions(resolutions) if resolutions else tuple(space.get("resolutions", (160, 176, 192, 208, 224))),
        n_classes if n_classes is not None else space.get("n_classes", 1000),
        quantize, options["device"], settings, forms, family=arch or space.get("family", "mbv3"),
    )
    with _progress("LUT") as update:
        card = build_lut(config, backend, out_path, on_progress=update)
    click.echo(
        f"{out_path}: {card['n_entries']}/{card['n_keys']} keys ({card['measured_now']} measured now "
        f"in {card['seconds']:.0f} s)"
    )


def _supernet_space(supernet_dir: str) -> dict[str, Any]:
    """Family, width, resolutions and classes of a run or supernet folder, from its card (which records
    the resolutions a run trained at)."""
    from ofa_tf.training.run_folder import open_run

    run = open_run(supernet_dir)
    space = run.search_space()
    return {"family": space["family"], "width_mult": space.get("width_mult", 1.0),
            "resolutions": tuple(space["resolutions"]), "n_classes": run.n_classes()}


def _default_table_path(supernet_dir: str | None, device: str, quantize: str | None) -> str:
    """RUN/luts/host[_int8].yaml; a phone's table needs a name, which --out gives."""
    from ofa_tf.errors import ConfigError

    if supernet_dir is None:
        raise ConfigError("give --out luts/NAME.yaml (or --supernet RUN, which writes RUN/luts/host.yaml)")
    if device != "host":
        raise ConfigError(f"give --out {supernet_dir}/luts/PHONE.yaml: the name is what `--budget Xms@PHONE` will say")
    return str(Path(supernet_dir) / "luts" / f"host{'_int8' if quantize else ''}.yaml")


@bench.command()
@_device_options
@click.option("--lut", "lut_path", required=True, type=click.Path(exists=True, dir_okay=False), help="LUT YAML.")
@click.option("--n", "n_subnets", type=int, default=50, show_default=True, help="Random subnets to measure.")
@click.option("--arch", type=click.Choice(sorted(family_names())), default=None,
              help="Supernet family (default: the table's, from its .json card).")
@click.option("--width-mult", type=float, default=None, help="Width the LUT was built for (default: the table's).")
@click.option("--resolution", type=int, default=None, help="Input resolution of the subnets (default: the table's largest).")
@click.option("--n-classes", type=int, default=None, help="Classifier outputs (default: the table's).")
@click.option("--seed", type=int, default=0, show_default=True, help="Subnet sampling seed.")
@click.option("--out", "out_prefix", default=None, help="Report prefix (default: beside the LUT, NAME.validate_R).")
def validate(lut_path, n_subnets, arch, width_mult, resolution, n_classes, seed, out_prefix, **options):
    """Compare LUT sums with measured whole-subnet latencies (r, ρ, MAPE, scatter plot, correction).

    Each subnet is exported as `ofa-tf export --target LUT` would: every 7x7
    depthwise layer in the form the table measured fastest for it.

    \b
    Example:
      ofa-tf bench validate --lut runs/cifar/luts/host.yaml --device host --n 50   # the table's space, largest resolution
      ofa-tf bench validate --lut luts/host_w1.0.yaml --device host --resolution 128 --n 50
    """
    from ofa_tf.cli.common import import_library

    import_library()
    from ofa_tf.android_bench.lut import built_config
    from ofa_tf.android_bench.validate import ValidateConfig, validate_lut, write_report

    built = built_config(lut_path) or {}  # the table's space, from its card (written by `bench lut`)
    resolution = resolution or max(built.get("resolutions", [224]))
    config = ValidateConfig(
        lut_path, width_mult if width_mult is not None else built.get("width_mult", 1.0), resolution, n_subnets,
        n_classes if n_classes is not None else built.get("n_classes", 1000), seed, family=arch or built.get("family", "mbv3"),
    )
    _, backend = _open_backend(options)
    with _progress("validate") as update:
        validation = validate_lut(config, backend, on_progress=update)
    prefix = out_prefix or str(Path(lut_path).with_name(f"{Path(lut_path).stem}.validate_{resolution}"))
    paths = write_report(validation, backend.describe(), prefix)
    s = validation.summary()
    click.echo(
        f"{s['n']} subnets at {resolution} px: Pearson r {s['pearson_r']:.3f}, Spearman ρ {s['spearman_rho']:.3f}, "
        f"MAPE {s['mape_pct']:.1f}% (bias {s['bias_pct']:+.1f}%)"
    )
    c = s["correction"]
    verdict = f"saved to {paths['correction']}" if "correction" in paths else "not saved: it does not lower the error"
    click.echo(
        f"linear correction {c['scale']:.3f} × sum {c['offset']:+.3f} ms: MAPE {s['mape_corrected_loo_pct']:.1f}% "
        f"(leave-one-out); {verdict}"
    )
    click.echo(f"report: {paths['json']}, plot: {paths['png']}")
