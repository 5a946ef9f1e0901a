"""`ofa-tf supernet from-keras`: a Keras network made an elastic supernet."""

from __future__ import annotations

import os

import click

from ofa_tf.cli.common import import_library


def _numbers(text: str | None, kind: type, flag: str) -> tuple:
    if not text:
        return ()
    try:
        return tuple(kind(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: give comma-separated numbers, e.g. {'0.5,0.75,1' if kind is float else '3,5'}", param_hint=flag) from None


@click.group()
def supernet():
    """Make supernets from other networks."""


@supernet.command("from-keras")
@click.argument("model_path", metavar="MODEL.keras", type=click.Path(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Supernet folder to create.")
@click.option("--kernels", default=None, help="Depthwise kernel sizes, e.g. 3,5 (default: odd sizes from 3 to the model's largest).")
@click.option("--expand", default=None, help="Fractions of each block's middle width, ending at 1, e.g. 0.5,0.75,1 (the default).")
@click.option("--depth", default=None, help="Blocks a stage may run, e.g. 2,3,4 (default: 2 to the longest stage).")
@click.option(
    "--inputs", type=click.Choice(["torch", "pixels", "unit", "tf", "caffe"]), default=None,
    help="What the model's input is: torch (ImageNet mean/std, ofa-tf's), pixels (0..255), unit (0..1), tf (-1..1), "
         "caffe (BGR minus the mean). Default: pixels where its preprocessing layers are inside it, else required.",
)
@click.option("--resolutions", default=None, help="Input resolutions to search, e.g. 128,160,192,224 (default: 4/7 of the model's to its own).")
def from_keras(model_path, out_dir, kernels, expand, depth, inputs, resolutions):
    """Make MODEL.keras (a functional CNN of MBConv blocks: MobileNetV2/V3, EfficientNet, or your
    own) an OFA supernet whose largest subnet is the model: its weights, preprocessing and logits.

    \b
    Examples:
      ofa-tf supernet from-keras mobilenet_v2.keras --inputs tf --out supernets/mbv2
      ofa-tf supernet from-keras model.keras --out supernets/mine --kernels 3,5 --expand 0.5,1 --depth 1,2,3
    """
    ofa_tf = import_library()
    from pathlib import Path

    from ofa_tf.elastic import from_keras as convert, load_keras_model, read_keras_model
    from ofa_tf.supernet.counting import count_costs

    if Path(out_dir).exists() and any(Path(out_dir).iterdir()):
        raise ofa_tf.ConfigError(f"--out {out_dir} exists and is not empty: choose a new folder")
    model = load_keras_model(model_path)
    reading = read_keras_model(model, inputs)
    net = convert(
        model, _numbers(kernels, int, "--kernels"), _numbers(expand, float, "--expand"), _numbers(depth, int, "--depth"),
        reading=reading,
    )
    chosen = _numbers(resolutions, int, "--resolutions") or net.space.resolutions
    ofa_tf.save_supernet(net, out_dir, resolutions=chosen, source={"keras_model": os.path.abspath(model_path)})
    size = reading.description.resolution or max(chosen)
    macs, params = count_costs(net.space, net.space.max_config(), size)
    for line in net.space.describe():
        click.echo(line)
    for note in reading.notes:
        click.echo(f"note: {note}")
    click.echo(f"largest subnet = {model.name}: {macs / 1e6:.2f}M MACs at {size} px, {params:,} parameters -> {out_dir}")
