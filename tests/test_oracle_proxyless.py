"""OFA-ProxylessNAS (`ofa_proxyless_d234_e346_k357_w1.3`) against the official package
(PyTorch, random weights, CPU): import, logits, MACs/params, extraction, reorganize."""

import numpy as np
import official_oracle as oracle
import pytest
import torch
from click.testing import CliRunner

from ofa_tf import OFAProxylessNASNets, count_macs, count_params, load_supernet
from ofa_tf._backend import tf
from ofa_tf.cli.main import main
from ofa_tf.errors import ConfigError
from ofa_tf.supernet.extract import extract_subnet
from ofa_tf.interop.official import from_official_state_dict, official_key_map


@pytest.fixture(scope="module")
def official():
    net = oracle.family_supernet("OFAProxylessNASNets", n_classes=100)
    oracle.randomize(net, seed=11)
    return net.eval()


@pytest.fixture(scope="module")
def ours(official):
    return from_official_state_dict(oracle.state_dict_numpy(official))


def test_import_infers_the_family_and_every_tensor_maps(official, ours):
    assert isinstance(ours, OFAProxylessNASNets)
    space = ours.space
    assert (space.family, space.width_mult, space.n_classes, ours.bn_epsilon) == ("proxyless", 1.3, 100, 1e-3)
    assert space.stage_block_counts == (4, 4, 4, 4, 4, 1) and space.n_blocks == len(official.blocks) - 1
    assert space.stage_widths == (40, 24, 32, 56, 104, 128, 248, 416, 1664)
    keys = {k for k in official.state_dict() if not k.endswith("num_batches_tracked")}
    assert keys == set(official_key_map(ours))


def test_logits_equal_official_for_random_subnets_with_one_trace(official, ours):
    space = ours.space
    forward = tf.function(
        lambda x, arch: ours(x, training=False, arch=arch),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32), ours.arch_spec()],
    )
    rng = np.random.default_rng(0)
    worst = 0.0
    for resolution in (128, 176, 224):
        images = rng.normal(size=(2, resolution, resolution, 3)).astype(np.float32)
        for config in [space.max_config(), space.min_config()] + [space.sample(rng) for _ in range(5)]:
            assert len(config.ks) == 21 and config.d[-1] == 1  # upstream's sample_active_subnet layout
            theirs = oracle.official_logits(official, config.to_dict(), images)
            worst = max(worst, oracle.relative_difference(forward(images, ours.arch_tensors(config)).numpy(), theirs))
    print(f"largest relative logit difference (proxyless w1.3): {worst:.2e}")
    assert worst <= 1e-4
    assert forward.experimental_get_tracing_count() == 1


def test_macs_and_params_equal_official_counter(official, ours):
    space = ours.space
    rng = np.random.default_rng(3)
    configs = [space.max_config(), space.min_config()] + [space.sample(rng) for _ in range(6)]
    for i, config in enumerate(configs):
        resolution = (128, 160, 224)[i % 3]
        exact, official_float32, params = oracle.official_subnet_counts(official, config.to_dict(), resolution)
        assert count_macs(config, resolution=resolution, space=space) == exact
        assert abs(exact - official_float32) <= 1e-6 * exact
        assert count_params(config, space=space) == params


def test_extracted_subnet_equals_the_supernet(ours):
    rng = np.random.default_rng(4)
    images = rng.normal(size=(2, 160, 160, 3)).astype(np.float32)
    for config in (ours.space.sample(rng), ours.space.min_config()):
        model = extract_subnet(ours, config.with_resolution(160))
        kinds = {type(layer).__name__ for layer in model.layers}
        assert "ReLU" in kinds or "Activation" in kinds
        assert not kinds & {"ElasticConv2D", "ElasticMBConvBlock"}
        expected = ours(images, training=False, arch=config).numpy()
        assert np.abs(model(images).numpy() - expected).max() <= 1e-4


def test_depth_of_the_one_block_stage_is_fixed(ours):
    space = ours.space
    assert space.normalize(d=4).d == (4, 4, 4, 4, 4, 1)  # upstream: min(len(stage), d)
    with pytest.raises(ConfigError, match=r"d\[5\]=2: stage 5 has a fixed depth of 1"):
        space.validate(space.max_config().__class__(ks=(3,) * 21, e=(3,) * 21, d=(2, 2, 2, 2, 2, 2)))
    arch = space.sample_indices(np.random.default_rng(0), 50, size_spread=True)
    assert set(arch.depth[:, -1]) == {1} and set(arch.depth[:, :-1].ravel()) == {2, 3, 4}
    assert space.n_subnets == (9**2 + 9**3 + 9**4) ** 5 * 9


def test_re_organize_middle_weights_gives_the_official_subnets():
    official = oracle.family_supernet("OFAProxylessNASNets", n_classes=10)
    oracle.randomize(official, seed=12)
    ours = from_official_state_dict(oracle.state_dict_numpy(official))
    official.re_organize_middle_weights(expand_ratio_stage=0)
    ours.re_organize_middle_weights(expand_ratio_stage=0)
    rng = np.random.default_rng(5)
    images = rng.normal(size=(2, 128, 128, 3)).astype(np.float32)
    config = ours.space.normalize(e=3)  # the smallest expand ratio keeps the most important channels
    theirs = oracle.official_logits(official.eval(), config.to_dict(), images)
    assert oracle.relative_difference(ours(images, training=False, arch=config).numpy(), theirs) <= 1e-4


def test_convert_official_cli_reads_zoo_names_and_info_shows_the_family(official, tmp_path):
    state = {k.replace(".conv.", ".mobile_inverted_conv.", 1) if k.startswith("blocks.") else k: v
             for k, v in official.state_dict().items()}  # the zoo's pre-rename MBConv name
    torch.save({"state_dict": state}, tmp_path / "ofa_proxyless.pth")
    runner = CliRunner()
    result = runner.invoke(main, ["convert-official", str(tmp_path / "ofa_proxyless.pth"), str(tmp_path / "supernet")])
    assert result.exit_code == 0 and "OFA-ProxylessNAS w1.3, 100 classes" in result.output, result.output
    net = load_supernet(tmp_path / "supernet")
    assert isinstance(net, OFAProxylessNASNets)
    rng = np.random.default_rng(6)
    images = rng.normal(size=(1, 128, 128, 3)).astype(np.float32)
    config = net.space.sample(rng)
    theirs = oracle.official_logits(official, config.to_dict(), images)
    assert oracle.relative_difference(net(images, training=False, arch=config).numpy(), theirs) <= 1e-4
    result = runner.invoke(main, ["info", "--arch", "proxyless", "--resolution", "224"])
    assert result.exit_code == 0 and "OFA-ProxylessNAS w1.3" in result.output and "[4, 4, 4, 4, 4, 1]" in result.output
    max_macs = count_macs(net.space.max_config(), resolution=224, space=net.space.__class__(width_mult=1.3, family="proxyless"))
    assert f"{max_macs / 1e6:.1f}" in result.output
