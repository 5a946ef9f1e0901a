"""`ofa-tf export`: conversion modes, the int8-friendly rewrite, validation, QAT, CLI errors.

Tiny models only (width 0.25, min subnet, 32 px, a few dozen images): the file
runs in about a minute.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ofa_tf import extract_subnet
from ofa_tf.cli.main import main
from ofa_tf.data.sources import open_source
from ofa_tf.export import quantize as images_for
from ofa_tf.export import validate as validation
from ofa_tf.export.rewrite import rebuild
from ofa_tf.export.tflite import convert_to_tflite, delegate_partitions, load_interpreter, op_histogram

from conftest import build_tiny

SIZE = 32


@pytest.fixture(scope="module")
def subnet():
    net = build_tiny(seed=5)
    return extract_subnet(net, net.space.min_config().with_resolution(SIZE))


@pytest.fixture(scope="module")
def data():
    source = open_source(None)
    images, labels = images_for.validation_images(source, SIZE, 40)
    calibration = images_for.calibration_images(source, SIZE, 16, seed=0)
    return source, images, labels, calibration


@pytest.fixture(scope="module")
def converted(subnet, data):
    """mode -> flatbuffer, converted once per module."""
    cache = {}

    def convert(mode):
        if mode not in cache:
            quantize, int8_io = ("int8", True) if mode == "int8-io" else (mode, False)
            model = rebuild(subnet, int8_friendly=quantize == "int8")
            representative = images_for.representative_dataset(data[3]) if quantize == "int8" else None
            cache[mode] = convert_to_tflite(model, quantize, representative, int8_io=int8_io)
        return cache[mode]

    return convert


@pytest.fixture(scope="module")
def subnet_file(subnet, tmp_path_factory):
    folder = tmp_path_factory.mktemp("spec")
    subnet.save(folder / "subnet.keras")
    return folder


@pytest.mark.parametrize("fold_scales", [True, False])
def test_int8_friendly_rewrite_is_exact_in_float(subnet, data, fold_scales):
    import tf_keras

    images = data[1][:8]
    expected = subnet(images).numpy()
    friendly = rebuild(subnet, int8_friendly=True, fold_scales=fold_scales)
    names = {type(layer).__name__ for layer in friendly.layers}
    assert "Rescaling" in names and "ReLU" in names
    assert all(getattr(layer, "activation", None) is None or "hard" not in str(layer.get_config().get("activation"))
               for layer in friendly.layers)
    assert np.abs(friendly(images).numpy() - expected).max() <= 1e-4
    twin = rebuild(subnet, lib=tf_keras)  # tf_keras: no hard_silu, other hard_sigmoid -> friendly form
    assert np.abs(twin(images, training=False).numpy() - expected).max() <= 1e-4


# "dynamic" runs through the CLI below; plain "int8" (no rewrite) in the partition test.
@pytest.mark.parametrize("mode", ["none", "fp16", "int8-io"])
def test_every_mode_converts_runs_and_validates(subnet, data, converted, mode):
    _, images, labels, _ = data
    quantize, int8_io = ("int8", True) if mode == "int8-io" else (mode, False)
    content = converted(mode)
    report = validation.validate(subnet, content, images, labels, quantize)
    assert report.passed, report.failures
    detail = load_interpreter(content).get_input_details()[0]
    assert detail["dtype"] == (np.int8 if int8_io else np.float32) and list(detail["shape"]) == [1, SIZE, SIZE, 3]
    if quantize == "none":
        assert report.max_abs_logit_diff <= 1e-4
    if quantize == "fp16":
        assert report.agreement >= 0.99 and report.max_abs_logit_diff <= 1e-2
    if quantize == "int8":
        # full-integer, one XNNPACK partition, no float hard-swish left
        assert report.delegate["partitions"] == 1 and report.delegate["cut_at"] == {}
        assert "HARD_SWISH" not in report.ops and report.ops["CONV_2D"] >= 10
        assert report.agreement >= 0.6
    assert report.file_bytes == len(content)


def test_folded_scales_drop_a_mul_per_hard_activation(subnet, data, converted):
    representative = images_for.representative_dataset(data[3])
    unfolded = op_histogram(convert_to_tflite(rebuild(subnet, int8_friendly=True, fold_scales=False), "int8", representative))
    folded = op_histogram(converted("int8-io"))
    hard_swish = op_histogram(convert_to_tflite(subnet))["HARD_SWISH"]
    # the / 6 of every hard-swish (and hard-sigmoid) went into the next convolution
    assert unfolded["MUL"] - folded["MUL"] >= hard_swish
    assert folded["CONV_2D"] == unfolded["CONV_2D"] and "HARD_SWISH" not in folded


def test_plain_int8_hard_swish_splits_the_xnnpack_graph(subnet, data):
    calibration = data[3]
    plain = convert_to_tflite(subnet, "int8", images_for.representative_dataset(calibration))
    ops = op_histogram(plain)
    partitions = delegate_partitions(plain)
    # every HARD_SWISH is left to the builtin kernels and cuts the graph
    assert partitions["cut_at"] == {"HARD_SWISH": ops["HARD_SWISH"]}
    assert partitions["partitions"] == ops["HARD_SWISH"] + 1
    assert partitions["delegated_nodes"] == partitions["nodes"] - ops["HARD_SWISH"]


def test_validation_fails_on_injected_problems(subnet, data, converted, monkeypatch):
    _, images, labels, _ = data
    content = converted("none")
    reference = validation.keras_logits(subnet, images)
    logits = validation.run_tflite(content, images)
    assert validation.compare("none", reference, logits, labels, content).passed
    off = validation.compare("none", reference, logits + 2e-4, labels, content)
    assert not off.passed and "float32 logits differ" in off.failures[0]
    shuffled = validation.compare("int8", reference, logits[:, ::-1], labels, content, min_agreement=0.99)
    assert any("agreement" in failure for failure in shuffled.failures)
    monkeypatch.setattr(validation, "non_builtin_ops", lambda content: ["FlexConv2D"])
    flex = validation.compare("none", reference, logits, labels, content)
    assert flex.failures == ["non-builtin ops FlexConv2D"]


@pytest.mark.slow
def test_qat_int8_tflite_matches_the_qat_model(subnet, data):
    from ofa_tf.export.qat import QATConfig, quantization_aware_training

    source, images, labels, _ = data
    student = quantization_aware_training(subnet, source, QATConfig(batch_size=16, max_steps_per_epoch=2, kd_ratio=0.0))
    content = convert_to_tflite(student, "int8", int8_io=True)
    assert "HARD_SWISH" not in op_histogram(content) and delegate_partitions(content)["partitions"] == 1
    expected = validation.keras_logits(student, images)
    got = validation.run_tflite(content, images)
    output_scale = load_interpreter(content).get_output_details()[0]["quantization"][0]
    # fake quantization vs integer kernels: rounding differences accumulate over ~50 layers to a few
    # output quantization steps (measured up to 8 at the maximum, 1-4 typically); a wrong scale or
    # graph is off by far more. (No top-1 check: near-tied logits of an untrained model flip.)
    steps = np.abs(got - expected) / output_scale
    assert steps.max() <= 12 and steps.mean() <= 3, (steps.max(), steps.mean())


def _run(*args):
    return CliRunner().invoke(main, ["export", *map(str, args)])


@pytest.mark.slow
def test_cli_qat_export_of_7x7_kernels_runs_with_the_default_forms(tmp_path):
    """tensorflow-model-optimization cannot quantize the split depthwise forms: QAT keeps the plain one."""
    net = build_tiny(seed=5)
    folder = tmp_path / "spec"
    folder.mkdir()
    config = net.space.min_config().with_resolution(SIZE)
    extract_subnet(net, dataclasses.replace(config, ks=(7,) * len(config.ks))).save(folder / "subnet.keras")
    out = tmp_path / "qat.tflite"
    result = _run(folder, "--quantize", "int8", "--qat-epochs", 1, "--qat-max-steps", 2, "--qat-batch-size", 8,
                  "--latency-only", "--out", out)
    assert result.exit_code == 0, result.output
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["quantization"] == "int8 (QAT)" and out.is_file()


def test_cli_exports_a_run_folder_with_metadata(subnet_file, tmp_path):
    out = tmp_path / "model.tflite"
    result = _run(subnet_file, "--quantize", "dynamic", "--validate-images", 20, "--out", out)
    assert result.exit_code == 0, result.output
    assert "validated on 20 test images (dynamic)" in result.output and out.is_file()
    card = json.loads((tmp_path / "model.json").read_text())
    assert card["input_size"] == SIZE and len(card["class_names"]) == 10 and card["quantization"] == "dynamic"
    assert card["preprocessing"]["mean"] == [0.485, 0.456, 0.406] and card["input"]["dtype"] == "float32"
    assert card["validation"]["images"] == 20 and card["validation"]["failures"] == []
    assert card["peak_memory_gb"] > 0


def test_cli_keeps_a_failing_model_as_unverified(subnet_file, converted, tmp_path, monkeypatch):
    from ofa_tf.export import tflite

    content = converted("none")
    monkeypatch.setattr(tflite, "convert_to_tflite", lambda *args, **kwargs: content)  # already tested above
    monkeypatch.setattr(validation, "non_builtin_ops", lambda content: ["FlexErf"])
    out = tmp_path / "model.tflite"
    result = _run(subnet_file / "subnet.keras", "--validate-images", 10, "--out", out)
    assert result.exit_code == 1
    assert "FAILED: non-builtin ops FlexErf" in result.output
    assert not out.exists() and (tmp_path / "model.tflite.unverified").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.keras"], "not found"),
        (["{folder}", "--quantize", "fp16", "--int8-io"], "--int8-io needs --quantize int8"),
        (["{folder}", "--qat-epochs", "1"], "--qat-epochs trains for int8"),
        (["{folder}", "--quantize", "int8", "--qat-epochs", "1", "--depthwise-large", "windows5"],
         "--qat-epochs keeps depthwise kernels above 5x5 plain: drop --depthwise-large windows5"),
        (["{folder}", "--resolution", "48"], "differs from the model's fixed input 32"),
        (["{folder}", "--resolution", "4"], "too small"),
        (["{empty}"], "has no subnet.keras"),
        (["{folder}", "--quantize", "int4"], "Invalid value for '--quantize'"),
    ],
)
def test_cli_bad_input_is_one_line(subnet_file, tmp_path, args, message):
    args = [a.format(folder=subnet_file, empty=tmp_path) for a in args]
    result = _run(*args, "--out", tmp_path / "m.tflite")
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "free_mb, args, message",
    [
        (0.001, [], "not enough memory for validation on 500 images"),
        (50, ["--validate-images", "40", "--quantize", "int8", "--calibration-samples", "5000"],
         "int8 calibration on 5000 images"),
    ],
)
def test_cli_foreseen_memory_shortage_is_one_line(subnet_file, tmp_path, monkeypatch, free_mb, args, message):
    from ofa_tf.export import memory

    monkeypatch.setattr(memory, "available_bytes", lambda: int(free_mb * 2**20))
    result = _run(subnet_file, *args, "--out", tmp_path / "m.tflite")
    assert result.exit_code == 2 and message in result.output and "lower --" in result.output, result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_qat_memory_need_counts_every_activation_of_a_batch(subnet):
    from ofa_tf.export import memory

    one = memory.activation_bytes(subnet)
    assert one > 4 * int(np.prod(subnet.inputs[0].shape[1:]))  # the input and every later layer's output
    assert memory.inference_bytes(subnet, 32) == 32 * memory.inference_bytes(subnet, 1) < 32 * one


def test_cli_exports_a_validated_saved_model(subnet_file, tmp_path):
    from ofa_tf._backend import tf
    from ofa_tf.export.pipeline import load_model

    out = tmp_path / "saved"
    result = _run(subnet_file, "--saved-model", "--out", out)
    assert result.exit_code == 0, result.output
    assert "SavedModel" in result.output and (out / "saved_model.pb").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["saved"]  # no staging folder left behind
    images = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    expected = load_model(subnet_file)(images).numpy()
    loaded = tf.saved_model.load(str(out))
    assert np.abs(loaded.serve(tf.constant(images)).numpy() - expected).max() <= 1e-4
    again = _run(subnet_file, "--saved-model", "--out", out)
    assert again.exit_code == 2 and "exists" in again.output
    mixed = _run(subnet_file, "--saved-model", "--quantize", "int8", "--out", tmp_path / "other")
    assert mixed.exit_code == 2 and "--saved-model writes the float model" in mixed.output


def test_cli_refuses_data_of_other_classes(tmp_path):
    net = build_tiny(seed=1, n_classes=12)
    folder = tmp_path / "spec"
    folder.mkdir()
    extract_subnet(net, net.space.min_config().with_resolution(SIZE)).save(folder / "subnet.keras")
    for target, out in (([], "m.tflite"), (["--saved-model"], "m")):
        result = _run(folder, *target, "--out", tmp_path / out)
        assert result.exit_code == 2 and "has 12 classes but the data (bundled) has 10" in result.output, result.output
        assert "--data" in result.output and "Traceback" not in result.output
        assert f"ofa-tf finetune {folder} --data " in result.output
    # a specialize folder's recorded data is the default: here a folder that is not there
    (folder / "subnet.json").write_text(json.dumps({"provenance": {"data": str(tmp_path / "imagenet")}}))
    result = _run(folder, "--out", tmp_path / "m.tflite")
    assert result.exit_code == 2 and str(tmp_path / "imagenet") in result.output, result.output


def test_conversion_keeps_the_terminal_clean(subnet, data, capfd, caplog):
    convert_to_tflite(rebuild(subnet, int8_friendly=True), "int8", images_for.representative_dataset(data[3]))
    out, err = capfd.readouterr()
    printed = out + err + caplog.text
    assert "fully_quantize" not in printed and "trackable_obj" not in printed, printed


def test_degenerate_logits_are_named():
    assert "below 1e-06" in validation.degenerate_logits(np.full((4, 10), 5e-11))
    assert validation.degenerate_logits(np.eye(10)[:6]) is None


@pytest.mark.slow
def test_untrained_model_exports_for_latency_only(tmp_path):
    import keras

    net = build_tiny(seed=3)
    model = extract_subnet(net, net.space.min_config().with_resolution(SIZE))
    head = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)][-1]
    head.set_weights([np.zeros_like(w) for w in head.get_weights()])  # logits all 0: nothing to validate against
    folder = tmp_path / "spec"
    folder.mkdir()
    model.save(folder / "subnet.keras")
    failed = _run(folder, "--quantize", "int8", "--validate-images", 20, "--out", tmp_path / "a.tflite")
    assert failed.exit_code == 1 and "cannot judge this export" in failed.output and "--latency-only" in failed.output
    result = _run(folder, "--quantize", "int8", "--validate-images", 20, "--latency-only", "--out", tmp_path / "b.tflite")
    assert result.exit_code == 0, result.output
    assert "accuracy not checked (--latency-only)" in result.output and (tmp_path / "b.tflite").is_file()
    assert json.loads((tmp_path / "b.json").read_text())["validation"]["latency_only"] is True


def _rewritten_kernels(form: str, padding: str, strides: int, size: int) -> list[tuple[int, int]]:
    """The depthwise kernels a 7x7 layer becomes: "dilated" with "same" padding (or the explicit
    ZeroPadding2D(3) the extractor writes) is at stride 1 a 5x5 and five dilated 3x3 kernels, at stride 2 on
    an even input a one-hot 2x2 pick and the taps of each of the four phases; else 5x5 windows."""
    if form == "dilated" and padding in ("same", "padded") and (strides == 1 or size % 2 == 0):
        if strides == 1:
            return [(5, 5)] + [(3, 3)] * 5
        phase = {"same": (5, 3), "padded": (3, 5)}[padding]  # the even / odd phase's taps (2 + 2 / 3 + 1 offsets)
        return [kernel for rows in phase for cols in phase for kernel in ((2, 2), (rows, cols))]
    return [(3, 3)] * 9 if form == "windows3" else [(5, 5)] * 4


@pytest.mark.parametrize("form", ["windows5", "windows3", "dilated"])
@pytest.mark.parametrize(
    "padding, strides, size",
    [("valid", 1, 13), ("valid", 2, 14), ("same", 1, 12), ("same", 2, 11), ("same", 2, 10), ("padded", 1, 10),
     ("padded", 2, 9), ("padded", 2, 8)],
)
def test_large_depthwise_kernels_rewritten_are_exact(padding, strides, size, form):
    import keras

    rng = np.random.default_rng(strides)
    inputs = keras.Input((size, size, 8))
    x = keras.layers.ZeroPadding2D(3)(inputs) if padding == "padded" else inputs
    layer = keras.layers.DepthwiseConv2D(7, strides=strides, padding="valid" if padding == "padded" else padding,
                                         use_bias=True, activation="relu6")
    model = keras.Model(inputs, layer(x))
    layer.set_weights([rng.normal(size=(7, 7, 8, 1)).astype(np.float32), rng.normal(size=8).astype(np.float32)])
    rewritten = rebuild(model, depthwise_form=form)
    kernels = [tuple(l.kernel_size) for l in rewritten.layers if type(l).__name__ == "DepthwiseConv2D"]
    assert sorted(kernels) == sorted(_rewritten_kernels(form, padding, strides, size))  # each of the 49 taps in exactly one kernel
    x = rng.normal(size=(2, size, size, 8)).astype(np.float32)
    expected = model(x).numpy()
    assert np.abs(rewritten(x).numpy() - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.fixture(scope="module")
def large_kernel_subnet(tmp_path_factory):
    net = build_tiny(seed=6)
    folder = tmp_path_factory.mktemp("k7")
    # all 7x7, 2 blocks per stage: 10 large depthwise layers
    config = dataclasses.replace(net.space.max_config(), d=(2,) * net.space.n_stages).with_resolution(SIZE)
    extract_subnet(net, config).save(folder / "subnet.keras")
    return folder, net.space, config


def _form_of(model: bytes) -> str:
    """The form of the large-kernel subnet (10 large layers, 4 of them at stride 2) by its depthwise ops: 1 + 10
    plain, 1 + 4 x 10 in 5x5 windows, 1 + 9 x 10 in 3x3 windows, 1 + 6 x 6 + 4 x 8 dilated (a pick and a
    convolution per phase at stride 2)."""
    count = op_histogram(model)["DEPTHWISE_CONV_2D"]
    return {11: "plain", 41: "windows5", 91: "windows3", 69: "dilated"}.get(count, f"{count} depthwise ops")


class _FakePhone:
    """A target on which the form `faster` runs 3x faster than the others."""

    def __init__(self, faster):
        self.faster = faster

    def measure(self, model, name="model"):
        from ofa_tf.android_bench.measurement import Measurement

        form = model.decode() if model in FORM_CONTENTS.values() else _form_of(model)
        ms = 1.0 if form == self.faster else 3.0
        return Measurement(mean_ms=ms, std_ms=0.0, count=1, median_ms=ms, min_ms=ms, max_ms=ms)

    def describe(self):
        return {"device": "fake"}


FORM_CONTENTS = {form: form.encode() for form in ("plain", "windows5", "windows3", "dilated")}


@pytest.mark.parametrize("faster", list(FORM_CONTENTS))
def test_the_depthwise_form_is_chosen_by_measurement(monkeypatch, faster):
    from ofa_tf.export.pipeline import _choose_form

    phone = lambda device: _FakePhone(faster)  # noqa: E731
    form, card = _choose_form(FORM_CONTENTS, "adb:fake", open_timer=phone)
    assert form == faster and card["latency_ms"] == {f: 1.0 if f == faster else 3.0 for f in FORM_CONTENTS}
    assert _choose_form({"plain": b"plain"}, "adb:fake") == ("plain", None)  # nothing to choose: nothing measured
    # a faster int8 form that flips more predictions (> 1 point of agreement) is not shipped
    worse = {f: 0.90 if f == faster else 0.95 for f in FORM_CONTENTS}
    form, card = _choose_form(FORM_CONTENTS, "adb:fake", lambda content: worse[content.decode()], n_images=500, open_timer=phone)
    assert form != faster and card["agreement"] == worse and "agrees with the float model" in card["why"]
    # ... but a difference two standard errors cannot tell on the validation images is noise: the faster ships
    # (1.2 points on 500 images at 96% agreement: the main job's int8 export on an AVX-only CPU)
    close = {f: 0.952 if f == faster else 0.964 for f in FORM_CONTENTS}
    assert _choose_form(FORM_CONTENTS, "adb:fake", lambda content: close[content.decode()], n_images=500, open_timer=phone)[0] == faster
    assert _choose_form(FORM_CONTENTS, "adb:fake", lambda content: close[content.decode()], n_images=5000, open_timer=phone)[0] != faster


@pytest.mark.slow
def test_export_ships_the_depthwise_form_the_device_runs_faster(large_kernel_subnet, tmp_path, monkeypatch):
    from ofa_tf.android_bench import devices

    monkeypatch.setattr(devices, "open_backend", lambda device, settings: _FakePhone("windows3"))
    out = tmp_path / "model.tflite"
    result = _run(large_kernel_subnet[0], "--validate-images", 20, "--device", "adb:fake", "--out", out)
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "model.json").read_text())["depthwise_large_kernels"]
    assert card["form"] == "windows3" and card["latency_ms"] == {"plain": 3.0, "windows5": 3.0, "windows3": 1.0, "dilated": 3.0}
    assert "windows3 form" in result.output and set(card["layers"].values()) == {"windows3"} and len(card["layers"]) == 10
    assert _form_of(out.read_bytes()) == "windows3"  # what was shipped is the form that won


def test_a_form_that_changes_the_float_logits_is_left_out_of_auto_and_refused_when_asked_for(
    large_kernel_subnet, tmp_path, monkeypatch
):
    from ofa_tf._backend import keras
    from ofa_tf.android_bench import devices
    from ofa_tf.export import rewrite

    rebuild = rewrite.rebuild

    def off_by_one_percent_in_3x3_windows(model, *args, depthwise_form="plain", **kwargs):
        built = rebuild(model, *args, depthwise_form=depthwise_form, **kwargs)
        if depthwise_form == "plain" or "windows3" not in str(depthwise_form):
            return built
        return keras.Model(built.inputs, keras.layers.Rescaling(1.01)(built.outputs[0]))

    monkeypatch.setattr(rewrite, "rebuild", off_by_one_percent_in_3x3_windows)
    monkeypatch.setattr(devices, "open_backend", lambda device, settings: _FakePhone("windows3"))
    result = _run(large_kernel_subnet[0], "--validate-images", 20, "--device", "adb:fake", "--out", tmp_path / "auto.tflite")
    assert result.exit_code == 0, result.output
    assert "depthwise form windows3 left out" in result.output
    card = json.loads((tmp_path / "auto.json").read_text())["depthwise_large_kernels"]
    assert card["form"] != "windows3" and "windows3" not in card["latency_ms"]
    asked = _run(large_kernel_subnet[0], "--depthwise-large", "windows3", "--validate-images", 20, "--out", tmp_path / "w3.tflite")
    assert asked.exit_code == 2 and "the export rewrite (windows3) changed the float logits" in asked.output


@pytest.mark.slow
def test_export_applies_a_latency_tables_forms_layer_by_layer(large_kernel_subnet, tmp_path, monkeypatch):
    import yaml

    from ofa_tf.android_bench import devices
    from ofa_tf.nas.latency_table import subnet_keys

    folder, space, config = large_kernel_subnet
    monkeypatch.setattr(devices, "open_backend", lambda *args, **kwargs: pytest.fail("--target times nothing"))
    # a table whose timings favour 3x3 windows at stride 1 and 5x5 windows at stride 2
    entries = {}
    for key in (key for key in subnet_keys(space, config, SIZE) if "-kernel:7-" in key):
        stride_2 = "-stride:2-" in key
        forms_ms = {"plain": 3.0, "windows5": 1.0 if stride_2 else 2.0, "windows3": 2.0 if stride_2 else 1.0}
        entries[key] = {"mean": 1.0, "form": min(forms_ms, key=forms_ms.get), "forms_ms": forms_ms}
    (tmp_path / "luts").mkdir()
    (tmp_path / "luts" / "phone.yaml").write_text(yaml.safe_dump(entries))
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "model.tflite"
    result = _run(folder, "--validate-images", 20, "--target", "phone", "--out", out)
    assert result.exit_code == 0, result.output
    card = json.loads((tmp_path / "model.json").read_text())["depthwise_large_kernels"]
    strides = {f"blocks_{b.index}_depthwise": b.stride for b in space.blocks if b.depth_index < 2}
    assert card["form"] == "table" and card["table"] == "luts/phone.yaml"
    assert card["layers"] == {name: "windows5" if s == 2 else "windows3" for name, s in strides.items()}
    depthwise = op_histogram(out.read_bytes())["DEPTHWISE_CONV_2D"]
    assert depthwise == 1 + sum(4 if s == 2 else 9 for s in strides.values())  # the shipped graph holds those forms
    # a table without this model's shapes, or --depthwise-large with --target: one line naming the fix
    (tmp_path / "luts" / "other.yaml").write_text(yaml.safe_dump(dict(list(entries.items())[1:])))
    missing = _run(folder, "--validate-images", 20, "--target", "other", "--out", tmp_path / "other.tflite")
    assert missing.exit_code == 2 and "has no block with a 7x7 depthwise layer" in missing.output
    assert "ofa-tf bench lut" in missing.output and len(missing.output.strip().splitlines()) == 1
    both = _run(folder, "--target", "phone", "--depthwise-large", "plain", "--out", tmp_path / "x.tflite")
    assert both.exit_code == 2 and "drop --depthwise-large" in both.output


def test_int8_keeps_the_smallest_maps_plain(large_kernel_subnet):
    """XNNPACK's int8 kernels cannot run windowed depthwise layers with outputs below 4x4 (they fail to
    prepare, or abort the process inside a block): int8 exports write only the larger ones in windows."""
    from ofa_tf.export.forms import INT8_MIN_WINDOWED_OUTPUT, for_int8, form_of, large_depthwise_layers
    from ofa_tf.export.pipeline import ExportConfig, _candidate_forms, load_model

    layers = large_depthwise_layers(rebuild(load_model(large_kernel_subnet[0])))
    small = {name for name, layer in layers.items() if layer.output_size < INT8_MIN_WINDOWED_OUTPUT}
    assert small and len(small) < len(layers)  # 32 px: outputs 8, 4, 2, 1
    forms, _ = _candidate_forms(layers, ExportConfig(model="m", out="m.tflite", quantize="int8"))
    assert set(forms) == {"plain", "windows5", "windows3", "dilated"}
    assert {name: form_of(forms["windows3"], layer) for name, layer in layers.items()} == {
        name: "plain" if name in small else "windows3" for name in layers
    }
    assert all(form_of("windows3", layer) == "windows3" for layer in layers.values())  # float: every layer
    # only small layers: an int8 export has nothing to choose
    tiny = {name: layers[name] for name in small}
    assert _candidate_forms(tiny, ExportConfig(model="m", out="m.tflite", quantize="int8"))[0] == {"plain": "plain"}
    assert form_of(for_int8("windows5"), next(iter(tiny.values()))) == "plain"


def test_target_tables_are_looked_up_in_the_subnets_run_first(tmp_path):
    from ofa_tf.export.pipeline import table_search_dirs

    folder = tmp_path / "specialized" / "10ms_host"
    folder.mkdir(parents=True)
    assert table_search_dirs(folder) == [Path(".")]
    (folder / "subnet.json").write_text(json.dumps({"provenance": {"supernet": str(tmp_path / "run" / "supernet")}}))
    assert table_search_dirs(folder) == [tmp_path / "run", tmp_path / "run" / "supernet", Path(".")]
