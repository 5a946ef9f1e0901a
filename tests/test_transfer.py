"""Transfer to the user's classes: `train --init` (a pretrained supernet, a new classifier) and
`finetune` (one extracted subnet, a new head)."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from conftest import build_tiny, color_folder
from ofa_tf import ConfigError, save_supernet
from ofa_tf.cli.main import main
from ofa_tf.supernet.extract import extract_subnet
from ofa_tf.io import atomic_save_model, load_model
from ofa_tf.training.config import apply_overrides
from ofa_tf.training.presets import transfer_preset
from ofa_tf.training.transfer import pretrained_architecture, pretrained_space, transfer_weights

def _invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A 10-class depth-2 supernet folder (depth 2: the trainer's paths at a third of the tracing)."""
    directory = tmp_path_factory.mktemp("pretrained") / "supernet"
    save_supernet(build_tiny(seed=1, depth_list=[2]), directory, resolutions=[24, 32])
    return directory


@pytest.fixture(scope="module")
def colors(tmp_path_factory):
    return color_folder(tmp_path_factory.mktemp("colors"))


def test_transfer_preset_trains_a_new_head_first_then_the_pretrained_architecture(pretrained):
    space = pretrained_space(pretrained)
    config = transfer_preset("mbv3", pretrained_architecture(space))
    head, teacher = config.phases[:2]
    assert head.trains == "classifier" and not head.kd and head.trains_one_subnet
    assert teacher.name == "teacher" and teacher.trains == "all" and teacher.base_lr < head.base_lr
    assert config.choices["d"] == (2,) and config.width_mult == 0.25  # the card's, not the cifar preset's
    assert all(p.kd for p in config.phases[2:])
    with pytest.raises(ConfigError, match="trains='backbone'"):
        apply_overrides(config, {"phases": [{**head.__dict__, "trains": "backbone"}]})


def test_transfer_weights_keeps_every_weight_and_the_classifier_only_for_the_same_classes():
    source = build_tiny(seed=1)
    for n_classes, kept in ((3, False), (10, True)):
        target = build_tiny(seed=2, n_classes=n_classes)
        fresh = target.classifier.kernel.numpy().copy()
        assert transfer_weights(source, target) is kept
        head = {id(v) for v in target.classifier.weights}
        for theirs, ours in zip(source.weights, target.weights):
            if id(ours) not in head:
                np.testing.assert_array_equal(theirs.numpy(), ours.numpy())
        expected = source.classifier.kernel.numpy() if kept else fresh
        np.testing.assert_array_equal(target.classifier.kernel.numpy(), expected)
    with pytest.raises(ConfigError, match="leave --arch, --width-mult"):
        transfer_weights(source, build_tiny(seed=1, width_mult=0.35))


def test_train_init_freezes_all_but_the_new_head_and_reestimates_bn_on_the_new_data(pretrained, colors, tmp_path):
    from ofa_tf import load_supernet

    run = tmp_path / "run"
    result = _invoke("train", "--init", pretrained, "--data", colors, "--out", run, "--max-steps", 2,
                     "--batch-size", 8, "--phases", "head")
    assert result.exit_code == 0, result.output
    before, after = load_supernet(pretrained), load_supernet(run / "supernet")
    assert after.classifier.max_units == 3
    head = {id(v) for v in after.classifier.weights}
    trainable = {id(v) for v in after.trainable_variables}
    bn_moved = 0
    for old, new in zip(before.weights, after.weights):
        if id(new) in head:
            continue
        if id(new) in trainable:  # frozen through the head phase
            np.testing.assert_array_equal(old.numpy(), new.numpy(), err_msg=new.path)
        elif "moving" in new.path:
            bn_moved += not np.allclose(old.numpy(), new.numpy())
    assert bn_moved > 0  # the statistics follow the new images
    card = json.loads((run / "supernet" / "supernet.json").read_text())["source"]
    assert card["data"]["classes"] == ["blue", "green", "red"] and card["data"]["initialized_from"] == str(pretrained)
    assert card["data"]["held_out_for_predictor"] == 9 and card["data"]["training_images"] == 39  # a fifth of 48
    config = json.loads((run / "config.json").read_text())
    assert config["resolutions"] == [24, 32] and config["choices"]["d"] == [2] and config["init"] == str(pretrained)
    events = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [e["classifier"] for e in events if e["event"] == "init"] == ["new"]


def test_train_init_refusals_are_one_line(pretrained, colors, tmp_path):
    cases = [
        (["--data", colors, "--holdout-images", 100, "--out", tmp_path / "h"],
         "cannot hold out 100 of 48 training images: choose a hold-out size (--holdout-images) below 48"),
        (["--preset", "transfer", "--out", tmp_path / "a"], "give --init SUPERNET_DIR"),
        (["--init", pretrained, "--arch", "proxyless", "--out", tmp_path / "b"], "is a mbv3 supernet: leave out --arch"),
        (["--init", tmp_path / "nothing", "--out", tmp_path / "c"], "is neither a training run"),
    ]
    for args, message in cases:
        result = _invoke("train", *args)
        assert result.exit_code == 2 and message in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1


def test_finetune_fits_a_new_head_and_learns_the_new_classes(colors, tmp_path):
    net = build_tiny(seed=1, depth_list=[2])
    source = tmp_path / "specialized"
    atomic_save_model(extract_subnet(net, net.space.min_config(32)), source / "subnet.keras")
    (source / "subnet.json").write_text(json.dumps({"macs": 1_000_000, "resolution": 32, "config": {}}))
    out = tmp_path / "mine"
    result = _invoke("finetune", source, "--data", colors, "--out", out, "--epochs", 12, "--batch-size", 8, "--lr", 0.02)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "subnet.json").read_text())
    model = load_model(out)
    assert model.output_shape == (None, 3) and model.layers[-1].name == "classifier"
    feature_width = int(model.layers[-1].input.shape[-1])
    assert summary["macs"] == 1_000_000 + feature_width * (3 - 10)
    assert summary["finetune"]["head"] == "new" and summary["finetune"]["classes"] == ["blue", "green", "red"]
    assert summary["provenance"]["data"] == str(colors) and summary["finetune"]["source_subnet"].endswith("subnet.keras")
    assert summary["finetune"]["top1_after"] > 60, summary["finetune"]  # chance is 33%
    again = _invoke("finetune", source, "--data", colors, "--out", out)
    assert again.exit_code == 2 and "exists and is not empty" in again.output
    rerun = _invoke("finetune", source, "--data", colors, "--out", tmp_path / "rerun", "--epochs", 12, "--batch-size", 8, "--lr", 0.02)
    assert rerun.exit_code == 0, rerun.output
    for ours, again in zip(model.weights, load_model(tmp_path / "rerun").weights):  # seeded: the same run twice
        np.testing.assert_array_equal(ours.numpy(), again.numpy(), err_msg=ours.path)


def test_finetune_refuses_too_little_data_and_a_model_without_a_classifier(colors, tmp_path):
    from ofa_tf._backend import keras

    result = _invoke("finetune", tmp_path, "--data", colors, "--out", tmp_path / "x", "--batch-size", 64)
    assert result.exit_code == 2 and "only 48 training images for batch size 64: lower --batch-size" in result.output
    inputs = keras.Input((8, 8, 3))
    atomic_save_model(keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(inputs)), tmp_path / "pool.keras")
    result = _invoke("finetune", tmp_path / "pool.keras", "--data", colors, "--out", tmp_path / "y", "--batch-size", 8)
    assert result.exit_code == 2 and "not a Dense classifier" in result.output, result.output


@pytest.mark.slow
def test_a_pretrained_supernet_transferred_to_a_3_class_folder_trains_specializes_and_exports(pretrained, colors, tmp_path):
    run = tmp_path / "run"
    steps = [
        ("train", "--init", pretrained, "--data", colors, "--out", run, "--max-steps", 2, "--batch-size", 8),
        ("predictor", "build", "--supernet", run, "--n-subnets", 10, "--bn-images", 16),
        ("predictor", "train", "--supernet", run, "--epochs", 5),
        ("specialize", "--supernet", run, "--budget", "100M-MACs", "--bn-images", 16, "--out", run / "specialized"),
        ("export", run / "specialized" / "100M-MACs", "--quantize", "none", "--out", tmp_path / "mine.tflite"),
    ]
    for args in steps:
        result = _invoke(*args)
        assert result.exit_code == 0, (args[0], result.output)
    meta = json.loads((tmp_path / "mine.json").read_text())
    assert meta["class_names"] == ["blue", "green", "red"], meta.get("class_names")
    summary = json.loads((run / "specialized" / "100M-MACs" / "subnet.json").read_text())
    assert summary["provenance"]["data"] == str(colors)
