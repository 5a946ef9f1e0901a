"""All-7x7 vs all-5x5 subnets at equal MACs through the user's commands: `ofa-tf export`, then `ofa-tf bench model`.

The two subnets of the w1.0 space (`--width-mult`) closest to MobileNetV3Large's MACs with
every kernel 7x7 / 5x5 (as in `bench_export.py`'s kernel study; random
weights; 10 classes, both networks, so that the export runs on the bundled
CIFAR-10 images) are saved as `.keras`, exported with `ofa-tf export
--latency-only` (fp32, `--depthwise-large auto`: the export times every
depthwise form on this host and ships the fastest), and timed with `ofa-tf
bench model --device host --host-clock cpu` (1 thread, CPU time),
alternating A/B `--repeats` times; the ratio is of the medians. Goal (issue
17): all-7x7 / all-5x5 <= 1.6x.

    python benchmarks/bench_kernel_cli.py [--resolution 224] [--repeats 5]
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
import sys
import tempfile
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_io import published_run, write_results  # noqa: E402

GOAL_RATIO = 1.6
N_CLASSES = 10  # the bundled data's


def _ofa_tf(*args: str) -> str:
    """Runs `ofa-tf ARGS` in this process (as the user's command line; TensorFlow imported once)."""
    from ofa_tf.cli.main import main

    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        main.main(list(args), standalone_mode=False)
    return output.getvalue()


def _save_subnets(folder: Path, resolution: int, width_mult: float) -> dict[str, dict]:
    import ofa_tf
    from bench_export import closest_subnet
    from ofa_tf._backend import keras

    reference = keras.applications.MobileNetV3Large(
        weights=None, input_shape=(resolution, resolution, 3), alpha=width_mult, include_preprocessing=False,
        classes=N_CLASSES,
    )
    net = ofa_tf.OFAMobileNetV3(width_mult=width_mult, n_classes=N_CLASSES)
    net.build((None, None, None, 3))
    subnets = {}
    for kernel in (5, 7):
        config = closest_subnet(net, ofa_tf.count_model_macs(reference), resolution, kernel=kernel).with_resolution(resolution)
        name = f"all-{kernel}x{kernel}"
        ofa_tf.extract_subnet(net, config).save(folder / f"{name}.keras")
        subnets[name] = {"config": config.to_dict(), "macs": int(ofa_tf.count_macs(config, resolution=resolution, space=net.space))}
    return subnets


@click.command()
@click.option("--resolution", default=224, show_default=True)
@click.option("--width-mult", default=1.0, show_default=True,
              help="of both networks (MobileNetV3Large's alpha); below 1.0 for a smoke run")
@click.option("--repeats", default=5, show_default=True, help="A/B alternations of `ofa-tf bench model`.")
@click.option("--depthwise-large", default="auto", show_default=True,
              help="`ofa-tf export --depthwise-large` (one form for a quick run; auto: the export's own choice).")
@click.option("--validate-images", type=int, default=None, help="`ofa-tf export --validate-images` (default: the export's).")
def main(resolution: int, width_mult: float, repeats: int, depthwise_large: str, validate_images: int | None):
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        subnets = _save_subnets(folder, resolution, width_mult)
        for name, info in subnets.items():
            options = ["--depthwise-large", depthwise_large]
            options += ["--validate-images", str(validate_images)] if validate_images else []
            _ofa_tf("export", str(folder / f"{name}.keras"), "--latency-only", *options, "--out", str(folder / f"{name}.tflite"))
            forms = json.loads((folder / f"{name}.json").read_text()).get("depthwise_large_kernels") or {"form": "plain"}
            info["form"], info["export_ms"] = forms["form"], forms.get("latency_ms")
        medians = {name: [] for name in subnets}
        for _ in range(repeats):
            for name in subnets:
                stats = folder / f"{name}.latency.json"
                _ofa_tf("bench", "model", str(folder / f"{name}.tflite"), "--device", "host", "--host-clock", "cpu",
                        "--json", str(stats))
                medians[name].append(json.loads(stats.read_text())["median_ms"])
    ms = {name: statistics.median(values) for name, values in medians.items()}
    ratio = round(ms["all-7x7"] / ms["all-5x5"], 3)
    rows = [[name, f"{info['macs'] / 1e6:.1f}", info["form"], f"{ms[name]:.2f}",
             " / ".join(f"{v:.2f}" for v in medians[name])] for name, info in subnets.items()]
    path = write_results(
        "bench_kernel_cli",
        f"all-7x7 vs all-5x5 at equal MACs via `ofa-tf export` + `ofa-tf bench model --host-clock cpu` ({resolution} px, 1 thread)",
        ["subnet", "MMACs", "depthwise form shipped", "median ms", f"medians of {repeats} alternating runs"],
        rows,
        {"ratio all-7x7 / all-5x5": ratio, "goal": f"<= {GOAL_RATIO}", "goal_met": ratio <= GOAL_RATIO,
         "subnets": subnets},
        published=published_run(),
    )
    print(f"all-7x7 / all-5x5: {ratio}x ({ms['all-7x7']:.2f} vs {ms['all-5x5']:.2f} ms); goal <= {GOAL_RATIO}")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
