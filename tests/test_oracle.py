"""Equality with the official OFA implementation (PyTorch, random weights, CPU)."""

import numpy as np
import official_oracle as oracle
import pytest

from ofa_tf import SearchSpace, count_macs, count_params
from ofa_tf._backend import tf
from ofa_tf.interop.official import assign_official_state_dict, from_official_state_dict, official_key_map
from ofa_tf.training import recalibrate_bn


@pytest.fixture(scope="module")
def official_w10():
    return oracle.official_supernet(1.0, seed=0)


@pytest.fixture(scope="module")
def ours_w10(official_w10):
    return from_official_state_dict(oracle.state_dict_numpy(official_w10))


def _forward(net):
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    arch_spec = {
        "kernel_index": tf.TensorSpec([net.space.n_blocks], tf.int32),
        "expand_index": tf.TensorSpec([net.space.n_blocks], tf.int32),
        "depth": tf.TensorSpec([net.space.n_stages], tf.int32),
    }
    return tf.function(lambda x, arch: net(x, training=False, arch=arch), input_signature=[spec, arch_spec])


def _relative_logit_diff(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / max(1.0, np.abs(theirs).max()))


def test_import_infers_the_architecture(official_w10, ours_w10):
    assert ours_w10.space.width_mult == 1.0 and ours_w10.space.n_classes == 1000
    assert ours_w10.space.ks_list == (3, 5, 7) and ours_w10.space.depth_list == (2, 3, 4)
    keys = {k for k in official_w10.state_dict() if not k.endswith("num_batches_tracked")}
    assert keys == set(official_key_map(ours_w10))


# the default tier checks one resolution; the slow tier two more through the same trace
@pytest.mark.parametrize("resolutions", [(128,), pytest.param((160, 224), marks=pytest.mark.slow)], ids=["128px", "160-224px"])
def test_logits_equal_official_for_random_subnets(official_w10, ours_w10, resolutions):
    forward = _forward(ours_w10)
    rng = np.random.default_rng(0)
    worst = 0.0
    for resolution in resolutions:
        images = rng.normal(size=(2, resolution, resolution, 3)).astype(np.float32)
        configs = [ours_w10.space.sample(rng) for _ in range(20)]
        for config in configs:
            theirs = oracle.official_logits(official_w10, config.to_dict(), images)
            ours = forward(images, ours_w10.arch_tensors(config)).numpy()
            worst = max(worst, _relative_logit_diff(ours, theirs))
    print(f"largest relative logit difference w1.0: {worst:.2e}")
    assert worst <= 1e-4
    assert forward.experimental_get_tracing_count() == 1


def test_w12_logits_equal_official():
    official = oracle.official_supernet(1.2, n_classes=100, seed=1)
    ours = from_official_state_dict(oracle.state_dict_numpy(official))
    assert ours.space.width_mult == 1.2 and ours.space.n_classes == 100
    forward = _forward(ours)
    rng = np.random.default_rng(1)
    images = rng.normal(size=(2, 160, 160, 3)).astype(np.float32)
    configs = [ours.space.max_config(), ours.space.min_config()] + [ours.space.sample(rng) for _ in range(4)]
    worst = max(
        _relative_logit_diff(forward(images, ours.arch_tensors(c)).numpy(), oracle.official_logits(official, c.to_dict(), images))
        for c in configs
    )
    print(f"largest relative logit difference w1.2: {worst:.2e}")
    assert worst <= 1e-4


@pytest.mark.parametrize("width", [1.0, pytest.param(1.2, marks=pytest.mark.slow)])
def test_macs_and_params_equal_official_counter(official_w10, width):
    official = official_w10 if width == 1.0 else oracle.official_supernet(1.2, seed=2)
    space = SearchSpace(width_mult=width)
    rng = np.random.default_rng(3)
    samples = 8 if width == 1.0 else 20  # the default tier's share of the official counter's time
    configs = [space.max_config(), space.min_config()] + [space.sample(rng) for _ in range(samples)]
    for i, config in enumerate(configs):
        resolution = (128, 160, 224)[i % 3]
        exact, official_float32, params = oracle.official_subnet_counts(official, config.to_dict(), resolution)
        ours = count_macs(config, resolution=resolution, space=space)
        assert ours == exact
        # count_net_flops sums in float32: equal up to that rounding (2**-24 relative per addition)
        assert abs(ours - official_float32) <= 1e-6 * ours
        assert count_params(config, space=space) == params


def _recover_order(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Index into `before`'s rows of each row of `after` (rows are unique random vectors)."""
    lookup = {row.tobytes(): i for i, row in enumerate(before)}
    return np.array([lookup[row.tobytes()] for row in after])


def _assert_same_order_up_to_ties(ours: np.ndarray, theirs: np.ndarray, keys: np.ndarray) -> int:
    """Equal orders, except swaps of channels whose sort keys tie in float32; returns #swaps."""
    differ = np.flatnonzero(ours != theirs)
    a, b = keys[ours[differ]], keys[theirs[differ]]
    tolerance = 4 * np.spacing(np.abs(a).astype(np.float32)) + 1e-6 * np.abs(a)
    assert np.all(np.abs(a - b) <= tolerance), (differ, a, b)
    return len(differ)


def _middle_keys(project_rows: np.ndarray, mid_channels, stage: int) -> np.ndarray:
    importance = np.abs(project_rows).sum(axis=1).astype(np.float32)
    if stage > 0:
        widths = sorted(mid_channels, reverse=True)
        right, base = len(importance), -len(widths) * 1e5
        for i in range(stage + 1):
            importance[widths[i] : right] += base
            base += 1e5
            right = widths[i]
    return importance


@pytest.mark.parametrize("stage", [0, 1])
def test_re_organize_middle_weights_gives_official_channel_order(stage):
    official = oracle.official_supernet(1.0, seed=4 + stage)
    ours = from_official_state_dict(oracle.state_dict_numpy(official))
    before = [block.project_conv.kernel.numpy()[0, 0] for block in ours.blocks]  # (mid, out) rows
    official.re_organize_middle_weights(expand_ratio_stage=stage)
    ours.re_organize_middle_weights(expand_ratio_stage=stage)
    swaps = moved = 0
    for index, block in enumerate(ours.blocks, start=1):
        theirs_rows = official.blocks[index].conv.point_linear.conv.conv.weight.detach().numpy()[:, :, 0, 0].T
        order_theirs = _recover_order(before[index - 1], theirs_rows)
        order_ours = _recover_order(before[index - 1], block.project_conv.kernel.numpy()[0, 0])
        keys = _middle_keys(before[index - 1], block.mid_channels, stage)
        swaps += _assert_same_order_up_to_ties(order_ours, order_theirs, keys)
        moved += int(np.any(order_ours != np.arange(len(order_ours))))
        # every other middle-channel tensor follows the same permutation as upstream's
        theirs_dw = official.blocks[index].conv.depth_conv.conv.conv.weight.detach().numpy()
        ours_dw = np.transpose(block.depthwise.kernel.numpy(), (2, 3, 0, 1))
        dw_before = _recover_order(theirs_dw.reshape(len(theirs_dw), -1), ours_dw.reshape(len(ours_dw), -1))
        assert np.array_equal(order_theirs[dw_before], order_ours)
    print(f"stage {stage}: {moved} blocks reordered, {swaps} channel positions differ only by float32 ties")
    assert moved == len(ours.blocks)


def test_bn_recalibration_equals_set_running_statistics():
    official = oracle.official_supernet(1.0, n_classes=10, seed=6)
    initial = oracle.state_dict_numpy(official)
    ours = from_official_state_dict(initial)
    rng = np.random.default_rng(5)
    config = ours.space.sample(rng)
    # 64 px: the statistics are per channel, so any size with a few pixels per map checks them
    batches = [rng.normal(size=(n, 64, 64, 3)).astype(np.float32) for n in (6, 6, 4)]
    expected_state = oracle.official_recalibrate(official, config.to_dict(), batches)
    assert recalibrate_bn(ours, batches, config=config) == 16
    worst = 0.0
    for key, (variable, layout) in official_key_map(ours).items():
        if "running" in key:
            ref = layout(expected_state[key])
            worst = max(worst, float(np.abs(variable.numpy() - ref).max() / max(1.0, np.abs(ref).max())))
    changed = sum(not np.allclose(initial[k], expected_state[k]) for k in expected_state if "running" in k)
    print(f"largest relative BN statistic difference: {worst:.2e} over {changed} updated tensors")
    assert changed > 20 and worst <= 1e-4


def test_bad_state_dicts_are_rejected_with_the_keys(official_w10, ours_w10):
    from ofa_tf import ConfigError

    state = oracle.state_dict_numpy(official_w10)
    broken = dict(state)
    broken.pop("blocks.3.conv.depth_conv.conv.7to5_matrix")
    broken["blocks.3.conv.extra.weight"] = np.zeros(3)
    with pytest.raises(ConfigError, match=r"unknown keys \['blocks.3.conv.extra.weight'\].*missing keys \['blocks.3.conv.depth_conv.conv.7to5_matrix'\]"):
        assign_official_state_dict(ours_w10, broken)
    wrong_shape = dict(state)
    wrong_shape["classifier.linear.bias"] = np.zeros(7, np.float32)
    with pytest.raises(ConfigError, match="classifier.linear.bias"):
        assign_official_state_dict(ours_w10, wrong_shape)
