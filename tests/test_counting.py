import numpy as np
import pytest

from ofa_tf import (
    ConfigError,
    SearchSpace,
    count_macs,
    count_model_macs,
    count_model_params,
    count_params,
    extract_subnet,
)



@pytest.mark.parametrize(
    "width, resolution, max_macs, min_macs",
    [(1.0, 224, 566.2, 121.3), (1.2, 224, 843.1, 193.1), (1.0, 160, 291.3, 63.2), (1.0, 128, 188.2, 41.5)],
)
def test_official_mac_numbers(width, resolution, max_macs, min_macs):
    space = SearchSpace(width_mult=width)
    assert count_macs(space.max_config(), width_mult=width, resolution=resolution) / 1e6 == pytest.approx(max_macs, abs=0.05)
    assert count_macs(space.min_config(), width_mult=width, resolution=resolution) / 1e6 == pytest.approx(min_macs, abs=0.05)


def test_count_accepts_dicts_and_rejects_bad_configs():
    config = SearchSpace().max_config().to_dict()
    assert count_macs(config) == count_macs(SearchSpace().max_config(), resolution=224)
    with pytest.raises(ConfigError, match=r"ks\[0\]=9"):
        count_macs({**config, "ks": [9] + config["ks"][1:]})
    with pytest.raises(ConfigError, match="d has 4 entries"):
        count_params({**config, "d": [2, 2, 2, 2]})


def test_analytic_counts_equal_extracted_model_counts(tiny_net):
    rng = np.random.default_rng(5)
    space = tiny_net.space
    for resolution in (32, 40):
        for _ in range(3):
            config = space.sample(rng).with_resolution(resolution)
            subnet = extract_subnet(tiny_net, config)
            assert count_model_macs(subnet) == count_macs(config, space=space)
            assert count_model_params(subnet) == count_params(config, space=space)


def test_vectorized_table_matches_scalar_counts():
    from ofa_tf.supernet.counting import EfficiencyTable

    space = SearchSpace()
    arch = space.sample_indices(np.random.default_rng(0), 50)
    macs = EfficiencyTable(space).macs(arch)
    for config, value in zip(space.from_indices(arch), macs):
        assert value == count_macs(config)
