import numpy as np
import pytest

from ofa_tf import ConfigError, SearchSpace, SubnetConfig, make_divisible


def test_make_divisible_matches_official_rule():
    assert make_divisible(16 * 1.2) == 24
    assert make_divisible(112 * 1.2) == 136
    assert make_divisible(4) == 8
    assert make_divisible(27) == 32  # 24 < 0.9 * 27 -> bumped
    assert make_divisible(20) == 24


@pytest.mark.parametrize(
    "width, expected",
    [(1.0, (16, 16, 24, 40, 80, 112, 160, 960, 1280)), (1.2, (24, 24, 32, 48, 96, 136, 192, 1152, 1536))],
)
def test_stage_widths(width, expected):
    assert SearchSpace(width_mult=width).stage_widths == expected


def test_blocks_follow_reference():
    space = SearchSpace()
    blocks = space.blocks
    assert len(blocks) == 20
    assert [b.stride for b in blocks if b.depth_index == 0] == [2, 2, 2, 1, 2]
    assert [b.use_se for b in blocks if b.depth_index == 0] == [False, True, False, True, True]
    assert [b.activation for b in blocks if b.depth_index == 0] == ["relu", "relu", "h_swish", "h_swish", "h_swish"]
    # first block of stage 1 takes the first block's 16 channels: mid 48/64/96.
    assert blocks[0].mid_channels == (48, 64, 96)
    assert blocks[4].mid_channels == (72, 96, 144)  # in 24
    assert blocks[19].mid_channels == (480, 640, 960)
    assert not blocks[0].has_residual and blocks[1].has_residual and not blocks[12].has_residual


def test_number_of_subnets():
    n = SearchSpace().n_subnets
    assert n == 7371**5
    assert 2.1e19 < n < 2.3e19


def test_validation_names_the_field():
    space = SearchSpace()
    good = space.max_config()
    with pytest.raises(ConfigError, match=r"ks has 19 entries"):
        space.validate(SubnetConfig(good.ks[:-1], good.e, good.d))
    with pytest.raises(ConfigError, match=r"ks\[3\]=4"):
        space.validate(SubnetConfig(good.ks[:3] + (4,) + good.ks[4:], good.e, good.d))
    with pytest.raises(ConfigError, match=r"e\[0\]=5"):
        space.validate(SubnetConfig(good.ks, (5,) + good.e[1:], good.d))
    with pytest.raises(ConfigError, match=r"d\[1\]=1"):
        space.validate(SubnetConfig(good.ks, good.e, (4, 1, 4, 4, 4)))
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        space.normalize(d=5)


def test_normalize_accepts_int_list_and_none_entries():
    space = SearchSpace()
    config = space.normalize(ks=3, e=[None] * 19 + [3], d=2)
    assert config.ks == (3,) * 20 and config.e == (6,) * 19 + (3,) and config.d == (2,) * 5


def test_sampling_is_deterministic_and_uniform():
    space = SearchSpace()
    a = space.sample_indices(np.random.default_rng(1), 4000)
    b = space.sample_indices(np.random.default_rng(1), 4000)
    assert np.array_equal(a.kernel_index, b.kernel_index) and np.array_equal(a.resolution, b.resolution)
    counts = np.bincount(a.kernel_index.ravel(), minlength=3) / a.kernel_index.size
    assert np.allclose(counts, 1 / 3, atol=0.01)
    assert set(np.unique(a.resolution)) <= set(space.resolutions)
    configs = space.from_indices(a)
    back = space.to_indices(configs)
    assert np.array_equal(back.expand_index, a.expand_index) and np.array_equal(back.depth, a.depth)


def test_size_spread_sampling_reaches_both_ends_of_the_cost_range():
    from ofa_tf.supernet.counting import EfficiencyTable

    space = SearchSpace(width_mult=0.5, n_classes=10, depth_list=(2, 3), resolutions=(56,))
    macs = EfficiencyTable(space).macs
    uniform = macs(space.sample_indices(np.random.default_rng(0), 2000))
    spread_arch = space.sample_indices(np.random.default_rng(0), 2000, size_spread=True)
    again = space.sample_indices(np.random.default_rng(0), 2000, size_spread=True)
    assert np.array_equal(spread_arch.expand_index, again.expand_index)
    assert set(np.unique(spread_arch.kernel_index)) == {0, 1, 2} and set(np.unique(spread_arch.depth)) == {2, 3}
    spread = macs(spread_arch)
    smallest, largest = macs(space.to_indices([space.min_config(56), space.max_config(56)]))
    assert np.percentile(spread, 5) < uniform.min() and np.percentile(spread, 95) > uniform.max()
    assert spread.min() < smallest * 1.1 and spread.max() > largest * 0.95


def test_config_dict_round_trip():
    space = SearchSpace()
    config = space.sample(np.random.default_rng(3)).with_resolution(192)
    assert SubnetConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="lacks"):
        SubnetConfig.from_dict({"ks": [3]})
