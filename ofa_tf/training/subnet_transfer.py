"""Adapting one extracted subnet to the user's classes: a new head, then fine-tuning.

The cheap path of transfer learning: specialize on a pretrained supernet for the
device's budget, then fine-tune only the one subnet on the new data. The output
is a subnet folder like `specialize`'s (`subnet.keras` + `subnet.json`), which
`ofa-tf export` and `ofa-tf bench` take.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any, Callable

from ofa_tf._backend import keras
from ofa_tf.data.sources import ImageSource
from ofa_tf.errors import ConfigError, DataError
from ofa_tf.io import SUBNET_FILE, atomic_save_model, atomic_write_json, load_model, model_file, read_json
from ofa_tf.training.finetune import FinetuneConfig, finetune, keras_top1

SUMMARY_FILE = "subnet.json"


def with_new_head(model: Any, n_classes: int, seed: int = 0) -> Any:
    """`model` with its last layer (a Dense classifier) replaced by a freshly initialized one of
    `n_classes` outputs, every other layer shared; `model` itself when it already has them."""
    head = model.layers[-1]
    if not isinstance(head, keras.layers.Dense):
        raise ConfigError(
            f"the model's last layer {head.name!r} is a {type(head).__name__}, not a Dense classifier: "
            "fine-tune a subnet made by `ofa-tf specialize` or `ofa-tf convert-official --specialized`"
        )
    if head.units == n_classes:
        return model
    initializer = keras.initializers.GlorotUniform(seed=seed)
    new_head = keras.layers.Dense(n_classes, kernel_initializer=initializer, name=head.name)
    return keras.Model(model.inputs, new_head(head.input), name=model.name)


def _source_summary(path: str | Path) -> dict[str, Any]:
    """The subnet.json beside a subnet (a specialize folder's), else {}."""
    summary = Path(path) / SUMMARY_FILE if Path(path).is_dir() else Path(path).with_name(SUMMARY_FILE)
    return read_json(summary, "run `ofa-tf specialize` again for this subnet") if summary.is_file() else {}


def transfer_subnet(
    subnet: str | Path,
    source: ImageSource,
    data_name: str,
    out_dir: str | Path,
    config: FinetuneConfig,
    teacher: Any | None = None,
    teacher_name: str | None = None,
    log: Callable[[str], None] = lambda line: None,
) -> dict[str, Any]:
    """Fits `subnet` to `source`'s classes and writes `out_dir/subnet.keras` and `subnet.json`.

    Args:
        subnet: a `.keras` file or a folder holding `subnet.keras`.
        source: the new task's images (training and test splits).
        data_name: `--data` as given, recorded for `export`.
        out_dir: the subnet folder to write.
        config: fine-tuning hyper-parameters.
        teacher: a Keras model of `source`'s classes at the subnet's resolution (soft targets), or None.
        teacher_name: where the teacher came from, for the card.
        log: progress lines.

    Returns:
        the summary written to `subnet.json`.
    """
    keras.utils.set_random_seed(config.seed)  # dropout layers draw their seeds when they are loaded
    model = load_model(subnet)
    old_classes = int(model.output_shape[-1])
    resolution = int(model.inputs[0].shape[1])
    model = with_new_head(model, source.n_classes, config.seed)
    new_head = old_classes != source.n_classes
    before = None if new_head else keras_top1(model, source.test_examples())
    log(f"{'new' if new_head else 'kept'} {source.n_classes}-class head on {model_file(subnet)} at {resolution} px; "
        f"fine-tuning on {source.n_train} images for {config.epochs:g} epochs")
    started = time.perf_counter()
    steps = finetune(
        model, teacher, source.train_examples(seed=config.seed), source.n_train, config, source.decoded_shuffle_buffer
    )
    seconds = time.perf_counter() - started
    top1 = keras_top1(model, source.test_examples())
    previous = _source_summary(subnet)
    summary = {
        **{k: previous[k] for k in ("config", "resolution", "latency_table", "budget") if k in previous},
        "resolution": resolution,
        "params": int(model.count_params()),
        "macs": _macs(previous, model, old_classes) if previous.get("macs") else None,
        "measured_top1": top1,
        "provenance": {**previous.get("provenance", {}), "data": data_name},
        "finetune": {
            "source_subnet": str(model_file(subnet)),
            "source_classes": old_classes,
            "data": data_name,
            "classes": list(source.class_names),
            "training_images": source.n_train,
            "head": "new" if new_head else "kept",
            "teacher": teacher_name,
            "steps": steps,
            "seconds": seconds,
            "top1_before": before,
            "top1_after": top1,
            "config": dataclasses.asdict(config),
        },
    }
    out = Path(out_dir)
    atomic_save_model(model, out / SUBNET_FILE)
    atomic_write_json(out / SUMMARY_FILE, summary)
    return summary


def _macs(previous: dict[str, Any], model: Any, old_classes: int) -> int:
    """The source's MACs with the classifier's share changed to the new class count."""
    features = int(model.layers[-1].input.shape[-1])
    return int(previous["macs"]) + features * (int(model.output_shape[-1]) - old_classes)


def require_trainable(source: ImageSource, batch_size: int) -> None:
    """Refuses a training split smaller than one batch, naming the fix."""
    if source.n_train < batch_size:
        raise DataError(
            f"only {source.n_train} training images for batch size {batch_size}: lower --batch-size to at most "
            f"{source.n_train}, or bring more images"
        )


__all__ = ["require_trainable", "transfer_subnet", "with_new_head"]
