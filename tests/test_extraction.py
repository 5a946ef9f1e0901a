import numpy as np
import pytest

from ofa_tf import OFAMobileNetV3, extract_subnet
from ofa_tf.families.mbconv.space import SubnetConfig
from ofa_tf._backend import keras

from conftest import build_tiny

STOCK_LAYERS = {
    "InputLayer",
    "ZeroPadding2D",
    "Conv2D",
    "DepthwiseConv2D",
    "BatchNormalization",
    "Activation",
    "GlobalAveragePooling2D",
    "Multiply",
    "Add",
    "Flatten",
    "Dropout",
    "Dense",
}


def supernet_logits(net, config, images):
    return net(images, training=False, arch=net.arch_tensors(config)).numpy()


def _covering_configs(space, rng) -> list[SubnetConfig]:
    """Subnets in which every block runs with every kernel size and expand ratio: three
    rotations of the choices at full depth, then the same at random depths."""
    ks, e, n = space.ks_list, space.expand_ratio_list, space.n_blocks
    configs = []
    for depth in (space.max_config().d, None):
        for shift in range(max(len(ks), len(e))):
            d = depth or tuple(int(v) for v in rng.choice(space.depth_list, space.n_stages))
            configs.append(SubnetConfig(
                ks=tuple(ks[(b + shift) % len(ks)] for b in range(n)),
                e=tuple(e[(2 * b + shift) % len(e)] for b in range(n)),
                d=d,
            ))
    return configs


@pytest.mark.parametrize("resolution", [32, pytest.param(48, marks=pytest.mark.slow)])
def test_extracted_subnets_equal_supernet(tiny_net, resolution):
    rng = np.random.default_rng(resolution)
    images = rng.normal(size=(4, resolution, resolution, 3)).astype(np.float32)
    worst = 0.0
    configs = [tiny_net.space.max_config(), tiny_net.space.min_config()] + _covering_configs(tiny_net.space, rng)
    for config in configs:
        subnet = extract_subnet(tiny_net, config.with_resolution(resolution))
        expected = supernet_logits(tiny_net, config, images)
        got = subnet(images, training=False).numpy()
        worst = max(worst, float(np.abs(expected - got).max()))
        assert {type(layer).__name__ for layer in subnet.layers} <= STOCK_LAYERS
    assert np.isfinite(worst) and worst <= 1e-4
    # the comparison is meaningful: different subnets give different logits
    a = supernet_logits(tiny_net, configs[0], images)
    b = supernet_logits(tiny_net, configs[1], images)
    assert np.abs(a - b).max() > 1e-2


def test_active_subnet_methods(tiny_net):
    config = tiny_net.sample_active_subnet(seed=7)
    assert set(config) == {"ks", "e", "d"} and len(config["ks"]) == 20 and len(config["d"]) == 5
    assert tiny_net.active_config.to_dict() == config
    tiny_net.set_active_subnet(ks=3, e=[4] * 20, d=[2, 3, 4, 2, 3])
    assert tiny_net.active_config.ks == (3,) * 20 and tiny_net.active_config.d == (2, 3, 4, 2, 3)
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    subnet = tiny_net.get_active_subnet(resolution=32)
    assert np.abs(tiny_net(images, training=False).numpy() - subnet(images).numpy()).max() <= 1e-4
    with pytest.raises(ValueError, match=r"ks\[0\]=4"):
        tiny_net.set_active_subnet(ks=4)
    tiny_net.set_max_net()
    assert tiny_net.active_config == tiny_net.space.max_config()


def test_any_resolution_without_rebuilding(tiny_net):
    for size in (32, 36, 64):
        assert tiny_net(np.zeros((1, size, size, 3), np.float32)).shape == (1, 10)


def test_keras_round_trip_without_custom_objects(tiny_net, tmp_path):
    config = tiny_net.space.sample(np.random.default_rng(1)).with_resolution(32)
    subnet = extract_subnet(tiny_net, config)
    path = tmp_path / "subnet.keras"
    subnet.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    images = np.random.default_rng(2).normal(size=(2, 32, 32, 3)).astype(np.float32)
    assert np.array_equal(loaded(images).numpy(), subnet(images).numpy())


def test_tflite_conversion_uses_builtin_ops_only(tiny_net):
    from ofa_tf.export.tflite import convert_to_tflite, load_interpreter, non_builtin_ops, op_histogram

    config = tiny_net.space.sample(np.random.default_rng(4)).with_resolution(32)
    subnet = extract_subnet(tiny_net, config)
    content = convert_to_tflite(subnet)
    assert non_builtin_ops(content) == []
    ops = op_histogram(content)
    assert ops.get("DEPTHWISE_CONV_2D", 0) >= 6 and "FULLY_CONNECTED" in ops
    images = np.random.default_rng(3).normal(size=(1, 32, 32, 3)).astype(np.float32)
    interpreter = load_interpreter(content)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    tflite_logits = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    assert np.abs(tflite_logits - subnet(images).numpy()).max() <= 1e-4


def test_reorganize_middle_weights_preserves_max_net_and_sorts():
    net = build_tiny(seed=3)
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    before = net(images, training=False).numpy()
    net.re_organize_middle_weights(expand_ratio_stage=0)
    after = net(images, training=False).numpy()
    assert np.abs(before - after).max() <= 1e-4  # a permutation of middle channels
    for block in net.blocks:
        importance = np.abs(np.asarray(block.project_conv.kernel)).sum(axis=(0, 1, 3))
        assert np.all(np.diff(importance) <= 1e-6)


def test_reorganize_stage_keeps_channels_inside_their_segment():
    net = build_tiny(seed=4)
    block = net.blocks[1]
    widths = sorted(block.mid_channels)
    before = np.asarray(block.project_conv.kernel).copy()
    net.re_organize_middle_weights(expand_ratio_stage=1)
    after = np.asarray(block.project_conv.kernel)
    # channels of the widest segment [mid(4), mid(6)) stay there; [0, mid(4)) is sorted in place
    for low, high in ((0, widths[1]), (widths[1], widths[2])):
        key = lambda k: np.sort(np.abs(k[..., low:high, :]).sum(axis=(0, 1, 3)))
        assert np.allclose(key(before), key(after))
    head = np.abs(after[..., : widths[1], :]).sum(axis=(0, 1, 3))
    assert np.all(np.diff(head) <= 1e-6)


def test_w12_supernet_builds_with_released_widths():
    net = OFAMobileNetV3(width_mult=1.2)
    net.build((None, None, None, 3))
    assert net.first_conv.kernel.shape == (3, 3, 3, 24)
    assert net.blocks[19].depthwise.kernel.shape == (7, 7, 1152, 1)
    assert net.blocks[19].depthwise.transform_matrices["7to5_matrix"].shape == (25, 25)
    assert net.blocks[19].depthwise.transform_matrices["5to3_matrix"].shape == (9, 9)
    assert net.feature_mix_conv.kernel.shape == (1, 1, 1152, 1536)
