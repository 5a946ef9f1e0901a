"""`ofa-tf export`: a subnet -> validated TFLite (registered on the `ofa-tf` group)."""

from __future__ import annotations

import click


@click.command()
@click.argument("model", type=click.Path())
@click.option("--tflite", "output_format", flag_value="tflite", default=True, help="Export to a validated .tflite (default).")
@click.option("--saved-model", "output_format", flag_value="saved_model", help="Export to a TensorFlow SavedModel folder instead.")
@click.option("--quantize", type=click.Choice(["none", "fp16", "dynamic", "int8"]), default="none", show_default=True)
@click.option("--int8-io", is_flag=True, help="int8 input and output tensors (with --quantize int8).")
@click.option("--int8-friendly/--no-int8-friendly", default=None, help="Rewrite hard-swish for XNNPACK int8 (default: on for int8).")
@click.option("--calibration-samples", type=int, default=300, show_default=True, help="Training images to calibrate int8 with.")
@click.option("--calibration-seed", type=int, default=0, show_default=True)
@click.option("--resolution", type=int, default=None, help="Input size (only for a model without a fixed one).")
@click.option("--data", default=None, help="'bundled', an image folder, TFRecords or tfds:NAME (default: the data the "
                                            "specialize folder's subnet was measured on, else bundled).")
@click.option("--validate-images", type=int, default=None,
              help="Test images to validate on (default: 500; 32 with --latency-only).")
@click.option(
    "--min-agreement", type=float, default=None,
    help="Top-1 agreement with the Keras model a quantized model needs (0-1; default fp16 0.99, dynamic 0.9, "
         "int8 0.6: int8 flips many low-margin predictions of a weakly trained model). Validation also fails "
         "when top-1 drops more than 5 points below the Keras model's.",
)
@click.option("--latency-only", is_flag=True,
              help="Skip the top-1 checks (ops, finiteness and float tolerance still run): for untrained models "
                   "exported to measure latency.")
@click.option("--qat-epochs", type=int, default=0, show_default=True, help="Quantization-aware fine-tuning epochs (int8).")
@click.option("--qat-learning-rate", type=float, default=0.005, show_default=True)
@click.option("--qat-batch-size", type=int, default=64, show_default=True)
@click.option("--qat-max-steps", type=int, default=None, help="Cap on the steps of each QAT epoch.")
@click.option("--depthwise-large", type=click.Choice(["auto", "plain", "windows5", "windows3", "dilated"]), default="auto",
              show_default=True,
              help="Depthwise kernels above 5x5 (OFA's 7x7): as they are, as exact sums of 5x5 or 3x3 windows, crop-free "
                   "(\"dilated\": a 5x5 plus five dilated 3x3 kernels at stride 1, the four input phases at stride 2), or whichever form runs fastest on --device (each is "
                   "converted and timed).")
@click.option("--device", default="host", show_default=True,
              help="Where --depthwise-large auto measures: host (LiteRT, 1 thread) or adb[:SERIAL] (a phone).")
@click.option("--target", default=None,
              help="A latency table (luts/NAME.yaml or a YAML path, from `ofa-tf bench lut`): each large depthwise "
                   "layer gets the form the table measured fastest for its shape, instead of timing on --device.")
@click.option("--out", "out", type=click.Path(), required=True, help="The FILE.tflite (or SavedModel folder) to write.")
def export(model, output_format, quantize, int8_io, int8_friendly, calibration_samples, calibration_seed, resolution, data,
           validate_images, min_agreement, latency_only, qat_epochs, qat_learning_rate, qat_batch_size, qat_max_steps,
           depthwise_large, device, target, out):
    """Export a subnet (.keras file or specialize run folder) to a validated TFLite model.

    The .tflite is run with LiteRT against the Keras model on the test split;
    a model that fails validation is kept as OUT.tflite.unverified (exit 1).
    OUT.json beside it holds class names, normalization, input size and the
    int8 scale/zero point.

    \b
    Examples:
      ofa-tf export runs/spec --quantize int8 --out model_int8.tflite
      ofa-tf export runs/spec --target pixel7 --out model.tflite     # forms of luts/pixel7.yaml
      ofa-tf export runs/spec --saved-model --out model_savedmodel
      ofa-tf export subnet.keras --quantize int8 --int8-io --qat-epochs 2 --out model_qat.tflite
    """
    from ofa_tf.cli.common import import_library

    import_library()
    from ofa_tf.android_bench.devices import open_form_timer
    from ofa_tf.export.pipeline import ExportConfig, recorded_data, run_export
    from ofa_tf.export.qat import QATConfig

    data = data or recorded_data(model)

    if output_format == "saved_model":
        from ofa_tf.errors import ConfigError
        from ofa_tf.export.saved_model import export_saved_model

        if quantize != "none" or qat_epochs or int8_io:
            raise ConfigError("--saved-model writes the float model: drop --quantize/--int8-io/--qat-epochs or use --tflite")
        difference = export_saved_model(model, out, data=data, resolution=resolution)
        click.echo(f"wrote {out} (SavedModel; max |logit diff| vs Keras {difference:.2g})")
        return
    if min_agreement is not None and not 0.0 <= min_agreement <= 1.0:
        raise click.UsageError(f"--min-agreement {min_agreement}: give a fraction between 0 and 1, e.g. 0.9")
    qat = QATConfig(learning_rate=qat_learning_rate, batch_size=qat_batch_size, max_steps_per_epoch=qat_max_steps)
    config = ExportConfig(
        model=model, out=out, quantize=quantize, int8_io=int8_io, int8_friendly=int8_friendly,
        calibration_samples=calibration_samples, calibration_seed=calibration_seed, resolution=resolution,
        data=data, validate_images=validate_images, min_agreement=min_agreement, latency_only=latency_only,
        qat_epochs=qat_epochs, qat=qat, depthwise_large=depthwise_large, device=device, target=target,
    )
    result = run_export(config, log=click.echo, open_timer=open_form_timer)
    for line in result.report.summary_lines():
        click.echo(line)
    if result.float_report is not None:
        click.echo(f"  against the float model: top-1 {100 * result.float_report.keras_top1:.2f}% float vs "
                   f"{100 * result.float_report.tflite_top1:.2f}% int8 (QAT), agreement {100 * result.float_report.agreement:.2f}%")
    click.echo(f"wrote {result.tflite_path} and {result.metadata_path}")
    if not result.report.passed:
        click.echo(f"Error: validation failed; the model is kept as {result.tflite_path}", err=True)
        raise SystemExit(1)
