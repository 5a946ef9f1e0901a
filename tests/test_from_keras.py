"""`ofa_tf.elastic.from_keras`: a Keras network made elastic, with the Keras model as the oracle.

For each `keras.applications` network (built offline with `weights=None`, its batch-norm
statistics and normalization randomized), the converted supernet's largest subnet gives the
model's logits at several resolutions (the supernet takes ofa-tf's normalized RGB images, the
model its own input convention), its MACs and parameters equal a count of the model, and its
extraction has the model's weighted layers, weight for weight.
"""

import numpy as np
import pytest

from ofa_tf._backend import keras

MODELS = {  # constructor arguments, and what the model's input is (None: read from its preprocessing layers)
    "MobileNetV2": (dict(alpha=1.0), "tf"),
    "MobileNetV2_0.35": (dict(alpha=0.35), "tf"),
    "MobileNetV3Small": ({}, None),
    "MobileNetV3Large": ({}, None),
    "EfficientNetB0": ({}, None),
    "EfficientNetB1": ({}, None),  # its first stage has two blocks without expand conv
    "ResNet50": ({}, "caffe"),
}
RESOLUTIONS = (32, 37)  # an even and an odd size: Keras' `correct_pad` pads each differently


def build(name: str, resolution: int):
    constructor = getattr(keras.applications, name.split("_")[0])
    return constructor(weights=None, input_shape=(resolution, resolution, 3), classifier_activation=None, **MODELS[name][0])


def randomize_statistics(model, seed: int = 0) -> None:
    """Random batch-norm statistics and affine weights (a fresh model's are 0/1) and input normalization."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, c), rng.normal(0, 0.2, c), rng.normal(0, 0.2, c), rng.uniform(0.5, 2.0, c)])
        elif isinstance(layer, keras.layers.Normalization):
            layer.set_weights([rng.uniform(0.3, 0.6, 3), rng.uniform(0.04, 0.09, 3), np.array(1)])
            layer.finalize_state()  # its `mean` and `variance`, what it computes with, come from its weights here


def copy_weights(source, target) -> None:
    target.set_weights(source.get_weights())
    for layer in target.layers:
        if isinstance(layer, keras.layers.Normalization):
            layer.finalize_state()


def weighted_layers(model) -> list[tuple[str, tuple, list[np.ndarray]]]:
    """(kind, shape facts, weights) of each layer with trainable weights, in order; a 1x1 conv on pooled
    features and a `Dense` are both "linear" (the same matrix)."""
    layers = []
    for layer in model.layers:
        if not layer.trainable_weights:
            continue
        kind = type(layer).__name__
        weights = [np.asarray(w) for w in layer.get_weights()]
        if kind == "Dense" or (kind == "Conv2D" and layer.output.shape[1:3] == (1, 1) and layer.kernel_size == (1, 1)):
            weights = [w.reshape(-1, w.shape[-1]) if w.ndim > 1 else w for w in weights]
            layers.append(("linear", (), weights))
        elif kind in ("Conv2D", "DepthwiseConv2D"):
            layers.append((kind, (layer.kernel_size, layer.strides), weights))
        else:
            layers.append((kind, (), weights))
    return layers


@pytest.fixture(scope="module", autouse=True)
def own_registry():
    """The families these tests convert stay registered for this module only."""
    from ofa_tf.space import registry

    saved = dict(registry._REGISTRY)
    yield
    registry._REGISTRY.clear()
    registry._REGISTRY.update(saved)


@pytest.fixture(scope="module", params=list(MODELS))
def converted(request):
    from ofa_tf.elastic import from_keras

    model = build(request.param, RESOLUTIONS[0])
    randomize_statistics(model)
    return request.param, model, from_keras(model, inputs=MODELS[request.param][1])


def normalized_images(resolution: int, seed: int, count: int = 2) -> np.ndarray:
    """Random images as ofa-tf feeds them (ImageNet mean/std normalized RGB)."""
    from ofa_tf.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    pixels = np.random.default_rng(seed).uniform(0, 1, (count, resolution, resolution, 3))
    return ((pixels - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)


def test_the_largest_subnet_is_the_keras_model(converted):
    from ofa_tf.families.keras.description import model_inputs
    from ofa_tf.supernet.counting import count_costs, count_model_macs, count_model_params
    from ofa_tf.supernet.extract import extract_subnet

    name, model, net = converted
    largest = net.space.max_config()
    assert largest == net.active_config
    for resolution in RESOLUTIONS:
        keras_model = build(name, resolution)
        copy_weights(model, keras_model)
        images = normalized_images(resolution, seed=resolution)
        expected = keras_model(model_inputs(images, net.space.family_spec.inputs), training=False).numpy()
        got = net(images, training=False).numpy()
        assert np.abs(got - expected).max() <= 1e-4 * np.abs(expected).max(), (name, resolution)
        assert count_costs(net.space, largest, resolution) == (count_model_macs(keras_model), count_model_params(keras_model))
    subnet = extract_subnet(net, largest.with_resolution(RESOLUTIONS[0]))
    ours, theirs = weighted_layers(subnet), weighted_layers(model)
    if net.space.family_spec.inputs == "caffe":  # a BGR model's stem kernel reads ofa-tf's RGB images: reversed channels
        theirs[0][2][0] = theirs[0][2][0][:, :, ::-1, :]
    assert [(kind, facts) for kind, facts, _ in ours] == [(kind, facts) for kind, facts, _ in theirs]
    for (kind, _, a), (_, _, b) in zip(ours, theirs):
        assert len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b)), kind


def test_a_smaller_subnet_extracts_exactly_and_counts_as_its_model(converted):
    from ofa_tf.supernet.counting import count_costs, count_model_macs, count_model_params
    from ofa_tf.supernet.extract import extract_subnet

    name, _, net = converted
    config = net.space.sample(np.random.default_rng(3)).with_resolution(RESOLUTIONS[1])
    assert config != net.space.max_config(RESOLUTIONS[1])
    subnet = extract_subnet(net, config)
    net.set_active_config(config)
    images = normalized_images(RESOLUTIONS[1], seed=2)
    try:
        np.testing.assert_allclose(subnet(images).numpy(), net(images, training=False).numpy(), atol=1e-4, rtol=1e-4)
    finally:
        net.set_active_config(net.space.max_config())
    assert count_costs(net.space, config, RESOLUTIONS[1]) == (count_model_macs(subnet), count_model_params(subnet))


def test_sorting_middle_channels_by_importance_keeps_the_largest_subnet(converted):
    """What the expand phases do first (`re_organize_middle_weights`) permutes channels, not the function."""
    _, _, net = converted
    images = normalized_images(RESOLUTIONS[0], seed=4)
    before = net(images, training=False).numpy()
    net.re_organize_middle_weights(expand_ratio_stage=1)
    np.testing.assert_allclose(net(images, training=False).numpy(), before, atol=1e-5 * max(1.0, np.abs(before).max()))


# ----- your own network: a small MBConv CNN built here ------------------------------------------------

def tiny_network(groups: int = 1, activation: str = "relu", branch: bool = False, classes: int = 4):
    """Rescaling, a stride-2 stem, a residual block without expand conv, a 5x5 stride-2 block with
    squeeze-excite (padded as Keras' `correct_pad`), a residual block, a head conv and a Dense."""
    layers = keras.layers
    inputs = keras.Input((32, 32, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1, name="rescale")(inputs)
    x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = layers.Activation(activation, name="stem_act")(layers.BatchNormalization(name="stem_bn")(x))
    y = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="b0_dw")(x)
    y = layers.ReLU(name="b0_act")(layers.BatchNormalization(name="b0_dw_bn")(y))
    y = layers.BatchNormalization(name="b0_project_bn")(layers.Conv2D(8, 1, use_bias=False, name="b0_project")(y))
    x = layers.Add(name="b0_add")([x, y])
    y = layers.Conv2D(24, 1, use_bias=False, groups=groups, name="b1_expand")(x)
    y = layers.ReLU(6.0, name="b1_expand_act")(layers.BatchNormalization(name="b1_expand_bn")(y))
    y = layers.ZeroPadding2D(((1, 2), (1, 2)), name="b1_pad")(y)
    y = layers.DepthwiseConv2D(5, strides=2, use_bias=False, name="b1_dw")(y)
    y = layers.ReLU(6.0, name="b1_dw_act")(layers.BatchNormalization(name="b1_dw_bn")(y))
    s = layers.GlobalAveragePooling2D(keepdims=True, name="b1_se_pool")(y)
    s = layers.Conv2D(4, 1, activation="relu", name="b1_se_reduce")(s)  # a third of its input: a "fixed" width
    s = layers.Conv2D(24, 1, activation="sigmoid", name="b1_se_expand")(s)
    y = layers.Multiply(name="b1_se")([y, s])
    x = layers.BatchNormalization(name="b1_project_bn")(layers.Conv2D(16, 1, use_bias=False, name="b1_project")(y))
    y = layers.Conv2D(32, 1, use_bias=False, name="b2_expand")(x)
    if branch:
        y = layers.Concatenate(name="b2_concat")([y, layers.Conv2D(32, 1, name="b2_side")(x)])
    y = layers.ReLU(6.0, name="b2_expand_act")(layers.BatchNormalization(name="b2_expand_bn")(y))
    y = layers.ReLU(6.0, name="b2_dw_act")(layers.BatchNormalization(name="b2_dw_bn")(layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="b2_dw")(y)))
    y = layers.BatchNormalization(name="b2_project_bn")(layers.Conv2D(16, 1, use_bias=False, name="b2_project")(y))
    x = layers.Add(name="b2_add")([x, y])
    x = layers.Conv2D(48, 1, use_bias=False, name="head")(x)
    x = layers.ReLU(6.0, name="head_act")(layers.BatchNormalization(name="head_bn")(x))
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(classes, activation="softmax", name="classifier")(layers.Dropout(0.2, name="dropout")(x))
    model = keras.Model(inputs, outputs, name="tiny_mbconv")
    randomize_statistics(model)
    return model


@pytest.mark.parametrize("kind, message", [
    (dict(groups=2), "layer 'b1_expand' (Conv2D) is a grouped convolution (groups=2): no elastic form"),
    (dict(activation="gelu"), "layer 'stem_act' (Activation) applies 'gelu': supported activations are"),
    (dict(branch=True), "layer 'b2_expand' (Conv2D) shares its input with 'b2_side', 'b2_add': a branch that is neither"),
])
def test_a_layer_that_fits_no_block_is_named_in_one_line(kind, message):
    from ofa_tf.elastic import NotRecognised, read_keras_model

    with pytest.raises(NotRecognised) as error:
        read_keras_model(tiny_network(**kind))
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_model_without_preprocessing_layers_must_say_what_its_input_is():
    from ofa_tf.elastic import read_keras_model
    from ofa_tf.errors import ConfigError

    model = build("MobileNetV2_0.35", 32)
    with pytest.raises(ConfigError, match="has no preprocessing layer at its input: say what its input is"):
        read_keras_model(model)
    assert read_keras_model(model, inputs="tf").description.inputs == "tf"


def test_your_own_network_is_the_largest_subnet_and_its_family_reloads_from_the_card(tmp_path, monkeypatch):
    from ofa_tf.elastic import from_keras, read_keras_model
    from ofa_tf.families.keras.description import model_inputs
    from ofa_tf.space import registry
    from ofa_tf.supernet.storage import load_supernet, save_supernet

    model = tiny_network()
    reading = read_keras_model(model)
    assert reading.description.stage_sizes == (2,) and reading.description.padding == "same"
    assert [b.se.follows if b.se else None for b in reading.description.blocks] == [None, "fixed", None]
    assert reading.notes == ["the classifier's softmax ('classifier') is left out: the supernet outputs logits"]
    net = from_keras(model, ks_list=(3, 5), expand_ratio_list=(0.5, 1.0), depth_list=(1, 2), reading=reading)
    images = normalized_images(32, seed=5)
    logits = net(images, training=False).numpy()
    probabilities = model(model_inputs(images, "pixels"), training=False).numpy()
    np.testing.assert_allclose(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True), probabilities, atol=1e-5)
    save_supernet(net, tmp_path / "supernet")
    monkeypatch.setattr(registry, "_REGISTRY", {k: v for k, v in registry._REGISTRY.items() if k != reading.description.name})
    loaded = load_supernet(tmp_path / "supernet")  # as in a new process: the card carries the family
    assert loaded.space == net.space
    np.testing.assert_allclose(loaded(images, training=False).numpy(), logits, atol=1e-6)


def test_the_cli_converts_a_saved_model_and_refuses_one_it_cannot_read(tmp_path):
    from click.testing import CliRunner

    from ofa_tf.cli.main import main

    tiny_network().save(tmp_path / "tiny.keras")
    tiny_network(groups=2).save(tmp_path / "grouped.keras")
    runner = CliRunner()
    result = runner.invoke(main, ["supernet", "from-keras", str(tmp_path / "tiny.keras"), "--out", str(tmp_path / "sn"), "--kernels", "3,5"])
    assert result.exit_code == 0, result.output
    assert "largest subnet = tiny_mbconv: " in result.output and (tmp_path / "sn" / "supernet.json").is_file()
    result = runner.invoke(main, ["supernet", "from-keras", str(tmp_path / "grouped.keras"), "--out", str(tmp_path / "bad")])
    assert result.exit_code == 2 and "grouped convolution" in result.output and not (tmp_path / "bad").exists()
    result = runner.invoke(main, ["supernet", "from-keras", str(tmp_path / "tiny.keras"), "--out", str(tmp_path / "sn2"), "--kernels", "3"])
    assert result.exit_code == 2 and "lacks the model's kernel sizes [5]" in result.output


@pytest.mark.slow
def test_your_own_network_runs_the_whole_pipeline(tmp_path):
    """from-keras -> train --init (the model as teacher) -> predictor -> specialize under MACs, params and
    latency (a host latency table of the converted layers) -> int8 export in one XNNPACK partition -> bench."""
    import json

    from click.testing import CliRunner

    from ofa_tf.cli.main import main
    from ofa_tf.nas.latency_table import LatencyTable
    from ofa_tf.space.registry import space_from_dict
    from ofa_tf.supernet.counting import count_costs

    def ofa_tf(*args):
        result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    tiny_network(classes=10).save(tmp_path / "tiny.keras")
    sn, run = tmp_path / "supernet", tmp_path / "run"
    ofa_tf("supernet", "from-keras", tmp_path / "tiny.keras", "--out", sn, "--kernels", "3,5", "--expand", "0.5,1", "--depth", "1,2", "--resolutions", "24,32")
    ofa_tf("train", "--init", sn, "--teacher", sn, "--preset", "cifar", "--phases", "kernel,depth,expand_1", "--max-steps", 2, "--out", run)
    ofa_tf("predictor", "build", "--supernet", run, "--n-subnets", 10, "--bn-images", 100)
    ofa_tf("predictor", "train", "--supernet", run)
    ofa_tf("bench", "lut", "--supernet", run, "--device", "host", "--num-runs", 3, "--warmup-runs", 1)
    space = space_from_dict(json.loads((run / "supernet" / "supernet.json").read_text())["search_space"])
    table = LatencyTable.from_yaml(space, run / "luts" / "host.yaml")
    extremes = [float(table.latency(space.to_indices([c]), 32)[0]) for c in (space.min_config(32), space.max_config(32))]
    macs, params = count_costs(space, space.max_config(32), 32)
    budgets = [f"{0.9 * macs / 1e6:.4f}M-MACs", f"{0.95 * params / 1e6:.4f}M-params", f"{sum(extremes) / 2:.4f}ms@host"]
    ofa_tf("specialize", "--supernet", run, "--budget", ",".join(budgets), "--lut", run / "luts" / "host.yaml",
           "--resolutions", 32, "--bn-images", 100, "--finalists", 0, "--out", run / "specialized")
    for budget in budgets:
        summary = json.loads((run / "specialized" / budget.replace("@", "_") / "subnet.json").read_text())
        assert summary["config"]["r"] == 32
    output = ofa_tf("export", run / "specialized" / budgets[-1].replace("@", "_"), "--tflite", "--quantize", "int8",
                    "--latency-only", "--out", tmp_path / "subnet_int8.tflite")
    assert "in 1 partition(s)" in output
    assert "ms over 5 runs on host" in ofa_tf("bench", "model", tmp_path / "subnet_int8.tflite", "--device", "host", "--num-runs", 5)
