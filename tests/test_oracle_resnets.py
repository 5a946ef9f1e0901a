"""OFA-ResNet50-D (`ofa_resnet50`) against the official package (PyTorch, random weights,
CPU): import, logits through one trace, MACs/params, extraction, reorganize, the CLI."""

import json

import numpy as np
import official_oracle as oracle
import pytest
import torch
from click.testing import CliRunner

from ofa_tf import OFAResNets, load_supernet
from ofa_tf._backend import tf
from ofa_tf.cli.main import main
from ofa_tf.errors import ConfigError
from ofa_tf.interop.official import from_official_state_dict, official_key_map
from ofa_tf.supernet.counting import count_costs
from ofa_tf.families.resnet.space import ResNetSubnetConfig


@pytest.fixture(scope="module")
def official():
    net = oracle.family_supernet("OFAResNets", n_classes=100)
    oracle.randomize(net, seed=21)
    return net.eval()


@pytest.fixture(scope="module")
def ours(official):
    return from_official_state_dict(oracle.state_dict_numpy(official))


def _official_logits(net, config: ResNetSubnetConfig, images: np.ndarray) -> np.ndarray:
    net.set_active_subnet(**config.to_dict())
    with torch.no_grad():
        return net.eval()(torch.from_numpy(np.transpose(images, (0, 3, 1, 2)).copy())).numpy()


def test_import_infers_the_family_and_every_tensor_maps(official, ours):
    assert isinstance(ours, OFAResNets)
    space = ours.space
    assert (space.depth_list, space.n_classes, space.n_blocks) == ((0, 1, 2), 100, 18)
    assert space.stem_widths == (40, 48, 64) and space.stage_widths(3) == (1328, 1640, 2048)
    keys = {k for k in official.state_dict() if not k.endswith("num_batches_tracked")}
    assert keys == set(official_key_map(ours))


def test_logits_equal_official_for_random_subnets_with_one_trace(official, ours):
    space = ours.space
    forward = tf.function(
        lambda x, arch: ours(x, training=False, arch=arch),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32), ours.arch_spec()],
    )
    rng = np.random.default_rng(0)
    worst, stems = 0.0, set()
    for resolution in (128, 176):  # 176: odd feature maps (11 px) in the average-pooled shortcut
        images = rng.normal(size=(2, resolution, resolution, 3)).astype(np.float32)
        for config in [space.max_config(), space.min_config()] + [space.sample(rng) for _ in range(4)]:
            stems.add(config.d[0])
            theirs = _official_logits(official, config, images)
            worst = max(worst, oracle.relative_difference(forward(images, ours.arch_tensors(config)).numpy(), theirs))
    print(f"largest relative logit difference (ResNet50-D): {worst:.2e}")
    assert worst <= 1e-4 and stems == {0, 2}
    assert forward.experimental_get_tracing_count() == 1


def test_macs_and_params_equal_official_counter(official, ours):
    space = ours.space
    rng = np.random.default_rng(3)
    for i, config in enumerate([space.max_config(), space.min_config()] + [space.sample(rng) for _ in range(6)]):
        resolution = (128, 160, 224)[i % 3]
        official.set_active_subnet(**config.to_dict())
        subnet = official.get_active_subnet(preserve_weight=True)
        macs, params = count_costs(space, config, resolution)
        assert macs == oracle.exact_flops(subnet, resolution)
        assert params == sum(p.numel() for p in subnet.parameters())


def test_extracted_subnet_equals_the_supernet(ours):
    rng = np.random.default_rng(4)
    images = rng.normal(size=(2, 144, 144, 3)).astype(np.float32)
    for config in (ours.space.sample(rng), ours.space.min_config()):
        ours.set_active_config(config)
        model = ours.get_active_subnet(resolution=144)
        assert {type(layer).__module__.split(".")[0] for layer in model.layers} == {"keras"}
        expected = ours(images, training=False).numpy()  # the active subnet, read from the variables
        assert np.abs(model(images).numpy() - expected).max() <= 1e-4 * max(1.0, np.abs(expected).max())


def test_bad_subnets_are_named(ours):
    with pytest.raises(ConfigError, match=r"w\[2\]=3 is not in w choices \[0, 1, 2\]"):
        ours.set_active_subnet(w=[0, 0, 3, 0, 0, 0])
    with pytest.raises(ConfigError, match="e has 3 entries, expected 18"):
        ours.set_active_subnet(e=[0.2, 0.25, 0.35])


def test_re_organize_middle_weights_gives_the_official_subnets():
    official = oracle.family_supernet("OFAResNets", n_classes=10)
    oracle.randomize(official, seed=22)
    ours = from_official_state_dict(oracle.state_dict_numpy(official))
    rng = np.random.default_rng(5)
    images = rng.normal(size=(2, 128, 128, 3)).astype(np.float32)
    for stage in (0, 1):
        official.re_organize_middle_weights(expand_ratio_stage=stage)
        ours.re_organize_middle_weights(expand_ratio_stage=stage)
        config = ours.space.normalize(e=0.2, w=0)  # the narrowest middles keep the most important channels
        theirs = _official_logits(official, config, images)
        assert oracle.relative_difference(ours(images, training=False, arch=config).numpy(), theirs) <= 1e-4


def test_convert_official_cli_and_info(official, tmp_path):
    torch.save({"state_dict": official.state_dict()}, tmp_path / "ofa_resnet50.pth")
    runner = CliRunner()
    result = runner.invoke(main, ["convert-official", str(tmp_path / "ofa_resnet50.pth"), str(tmp_path / "supernet")])
    assert result.exit_code == 0 and "OFA-ResNet50-D, 100 classes" in result.output, result.output
    net = load_supernet(tmp_path / "supernet")
    assert isinstance(net, OFAResNets)
    rng = np.random.default_rng(6)
    images = rng.normal(size=(1, 128, 128, 3)).astype(np.float32)
    config = net.space.sample(rng)
    assert oracle.relative_difference(net(images, training=False, arch=config).numpy(), _official_logits(official, config, images)) <= 1e-4
    # specialize with an official ResNet accuracy predictor (random weights), as upstream's ResNet50 tutorial
    from ofa.nas.accuracy_predictor.acc_predictor import AccuracyPredictor
    from ofa.nas.accuracy_predictor.arch_encoder import ResNetArchEncoder

    torch.manual_seed(0)
    official_predictor = AccuracyPredictor(ResNetArchEncoder(image_size_list=[128, 160, 192, 224]), device="cpu")
    torch.save(official_predictor.state_dict(), tmp_path / "resnet_acc.pth")
    result = runner.invoke(main, [
        "specialize", "--supernet", str(tmp_path / "supernet"), "--predictor", f"official:{tmp_path / 'resnet_acc.pth'}",
        "--budget", "2G-MACs", "--no-recalibrate", "--generations", "10", "--population", "16", "--out", str(tmp_path / "sp"),
    ])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "sp" / "2G-MACs" / "subnet.json").read_text())
    chosen = net.space.config_from_dict(summary["config"])
    assert summary["macs"] == count_costs(net.space, chosen)[0] <= 2e9 and chosen.resolution in (128, 160, 192, 224)
    with torch.no_grad():
        expected = official_predictor.predict_acc([{**chosen.to_dict(), "image_size": chosen.resolution}]).item()
    assert summary["predicted_top1"] == pytest.approx(100 * expected, abs=1e-3)
    result = runner.invoke(main, ["info", "--arch", "resnet50", "--resolution", "224", "--n-classes", "100"])
    max_macs, _ = count_costs(net.space, net.space.max_config(), 224)
    assert result.exit_code == 0 and "OFA-ResNet50-D" in result.output and f"{max_macs / 1e6:.1f}" in result.output


def test_encoding_and_official_resnet_predictor_load():
    from ofa.nas.accuracy_predictor.acc_predictor import AccuracyPredictor
    from ofa.nas.accuracy_predictor.arch_encoder import ResNetArchEncoder

    from ofa_tf.interop.official_nas import accuracy_predictor_from_state_dict
    from ofa_tf.nas.arch_encoding import ArchEncoder
    from ofa_tf.families.resnet.space import ResNetSpace

    space = ResNetSpace()
    resolutions = (128, 160, 192, 224)
    theirs = ResNetArchEncoder(image_size_list=list(resolutions))
    rng = np.random.default_rng(7)
    configs = [space.sample(rng).with_resolution(int(rng.choice(resolutions))) for _ in range(40)]
    configs += [space.max_config(224), space.min_config(128)]
    arch = space.to_indices(configs)
    expected = np.array([theirs.arch2feature({**c.to_dict(), "image_size": c.resolution}) for c in configs])
    assert np.array_equal(ArchEncoder(space, resolutions).encode(arch), expected)
    torch.manual_seed(0)
    official = AccuracyPredictor(theirs, device="cpu")
    with torch.no_grad():
        for parameter in official.parameters():
            parameter.copy_(torch.randn(parameter.shape) * 0.05)
        official.base_acc.fill_(0.7)
        expected_acc = official(torch.from_numpy(expected).float()).numpy()
    ours = accuracy_predictor_from_state_dict(oracle.state_dict_numpy(official), space)  # resolutions from the width
    assert ours.encoder.resolutions == resolutions
    assert np.abs(ours.predict(arch) - expected_acc).max() <= 1e-5
