"""Budget parsing and the vectorized evolutionary search."""

import dataclasses

import numpy as np
import pytest

from ofa_tf import ConfigError, SearchSpace
from ofa_tf.supernet.counting import EfficiencyTable
from ofa_tf.nas.budget import parse_budget, parse_budgets
from ofa_tf.nas.search_algorithm import EvolutionFinder


@pytest.mark.parametrize(
    "text, kind, limit, lut",
    [
        ("600M-MACs", "macs", 600e6, None),
        ("1.2G-MACs", "macs", 1.2e9, None),
        ("5M-params", "params", 5e6, None),
        ("250000-macs", "macs", 250000, None),
        ("25ms@note10", "latency", 25.0, "note10"),
        ("12.5ms@luts/pixel.yaml", "latency", 12.5, "luts/pixel.yaml"),
    ],
)
def test_good_budgets(text, kind, limit, lut):
    budget = parse_budget(text)
    assert (budget.kind, budget.limit, budget.lut) == (kind, pytest.approx(limit), lut)


@pytest.mark.parametrize("text", ["600", "600M", "600X-MACs", "-5M-params", "ms@x", "25ms", "0M-MACs", ""])
def test_bad_budgets_name_the_grammar(text):
    with pytest.raises(ConfigError, match="600M-MACs, 1.2G-MACs, 5M-params or 25ms@"):
        parse_budgets(text)


def test_several_budgets():
    assert [b.limit for b in parse_budgets("200M-MACs, 400M-MACs,600M-MACs")] == [200e6, 400e6, 600e6]


def _finder(space, limit, generations=30):
    table = EfficiencyTable(space)
    # a stand-in predictor that prefers bigger subnets with a preference for kernel 5 (not monotone in MACs)
    accuracy = lambda arch: table.macs(arch) / 1e9 + 0.01 * (arch.kernel_index == 1).sum(axis=1)  # noqa: E731
    return EvolutionFinder(space, accuracy, table.macs, limit, generations=generations), table, accuracy


def test_search_respects_the_budget_and_is_deterministic():
    space = SearchSpace(resolutions=(160, 176, 192, 208, 224))
    finder, table, accuracy = _finder(space, 300e6)
    first, second = finder.run(seed=3), finder.run(seed=3)
    assert np.array_equal(first.best.kernel_index, second.best.kernel_index) and first.best_accuracy == second.best_accuracy
    assert np.all(table.macs(first.population) <= 300e6) and first.best_efficiency <= 300e6
    assert np.all(np.diff(first.best_per_generation) >= 0)  # parents are kept: the best never gets worse
    # better than the best of as many random feasible subnets as the search evaluated
    random = space.sample_indices(np.random.default_rng(0), 200_000)
    feasible = table.macs(random) <= 300e6
    assert first.best_accuracy >= accuracy(random)[feasible].max()


def test_infeasible_budget_fails_fast_with_a_clear_error():
    space = SearchSpace()
    finder, _, _ = _finder(space, 10e6)
    with pytest.raises(ConfigError, match="fit the budget"):
        finder.run(seed=0)


def test_a_subnet_far_below_its_budget_says_why():
    from ofa_tf.nas.efficiency_predictor import efficiency_model
    from ofa_tf.nas.specialize import SearchConfig, search_budget

    space = SearchSpace(width_mult=0.5, n_classes=10, resolutions=(40, 48, 56))
    budget = parse_budget("8M-MACs")
    model = efficiency_model(budget, space)
    config = SearchConfig(generations=20)
    bigger_is_better = search_budget(space, lambda arch: model.cost(arch) / 1e8, model, budget, config)
    assert bigger_is_better.cost >= 0.9 * budget.limit and bigger_is_better.note == ""
    smaller_is_better = search_budget(space, lambda arch: 1.0 - model.cost(arch) / 1e8, model, budget, config)
    assert smaller_is_better.cost < 0.5 * budget.limit
    note = smaller_is_better.note
    share = int(100 * smaller_is_better.cost / budget.limit)
    assert note.startswith(f"uses {share}% of the budget: the predictor scores it") and "random subnets within 90-100%" in note
    best_near = float(note.rsplit("(", 1)[1].rstrip("%)"))
    assert best_near < 100 * smaller_is_better.predicted_accuracy and best_near <= 100 * (1.0 - 0.9 * 0.08)


def test_known_subnets_start_the_search_so_a_larger_budget_never_scores_lower():
    space = SearchSpace(resolutions=(160, 176, 192, 208, 224))
    table = EfficiencyTable(space)
    known = space.to_indices([space.min_config(160), space.max_config(224)])  # only the first fits 300M
    assert table.macs(known)[0] <= 300e6 < table.macs(known)[1]
    loves_min = lambda arch: -table.macs(arch)  # noqa: E731  (a predictor that scores the smallest subnet best)
    plain = EvolutionFinder(space, loves_min, table.macs, 300e6, generations=0).run(seed=0)
    started = EvolutionFinder(space, loves_min, table.macs, 300e6, generations=0, known=known).run(seed=0)
    assert plain.best_accuracy < loves_min(known)[0] == started.best_accuracy
    assert np.all(table.macs(started.population) <= 300e6)  # the known subnet over the budget was left out


def test_bn_recalibration_crops_follow_the_run(tmp_path):
    from ofa_tf.data.transforms import DEFAULT_CROP_SCALE
    from ofa_tf.training.run_folder import RunFolder
    from ofa_tf.training.presets import cifar_preset

    assert RunFolder(tmp_path, tmp_path, cifar_preset()).crop_scale() == cifar_preset().crop_scale != DEFAULT_CROP_SCALE
    assert RunFolder(tmp_path, tmp_path, None).crop_scale() == DEFAULT_CROP_SCALE  # a converted official supernet


def test_resnet_costs_over_arrays_equal_the_extracted_models_and_indices_round_trip():
    """The slot sums (one pass over 200 subnets) equal a layer-by-layer count of extracted stock models;
    the official counter's equality is the oracle tests'."""
    from ofa_tf import count_model_macs, count_model_params
    from ofa_tf.supernet.counting import EfficiencyTable
    from ofa_tf.families.resnet.extract import extract_resnet_subnet
    from ofa_tf.families.resnet.network import OFAResNets

    net = OFAResNets(width_mult_list=(0.1, 0.15, 0.2), n_classes=10)
    net.build((None, None, None, 3))
    space = dataclasses.replace(net.space, resolutions=(32, 40, 48))
    arch = space.sample_indices(np.random.default_rng(0), 200, size_spread=True)
    table = EfficiencyTable(space)
    macs, params = table.macs(arch), table.params(arch)
    configs = space.from_indices(arch)
    for row in np.argsort(macs)[[0, 67, 133, 199]]:
        model = extract_resnet_subnet(net, configs[row])
        assert (count_model_macs(model), count_model_params(model)) == (macs[row], params[row])
    assert all(np.array_equal(a, b) for a, b in zip(space.to_indices(configs).arrays(), arch.arrays()))
    assert set(arch.depth[:, 0]) == {0, 2}  # the stem's depth is the smallest or the largest, as upstream


def test_resnet_search_mutates_depth_expand_and_width_under_a_macs_budget():
    from ofa_tf.supernet.counting import EfficiencyTable
    from ofa_tf.families.resnet.space import ResNetSpace

    space = ResNetSpace(resolutions=(160, 192, 224))
    table = EfficiencyTable(space)
    # a stand-in predictor rewarding widths, then expand ratios, then depth
    score = lambda arch: 3.0 * arch.width_index.sum(1) + 2.0 * arch.expand_index.sum(1) + arch.depth.sum(1)  # noqa: E731
    finder = EvolutionFinder(space, score, table.macs, 2.5e9, population_size=24, generations=15)
    result = finder.run(seed=0)
    assert result.best_efficiency <= 2.5e9 and np.all(result.population_efficiency <= 2.5e9)
    start = score(finder.initial_population(np.random.default_rng(0)))
    assert result.best_accuracy > start.max()
    children = finder.mutate(np.random.default_rng(1), result.population, 200)
    assert set(children.depth[:, 0]) <= {0, 2}
    for field in ("depth", "expand_index", "width_index"):  # every choice is searched
        assert (getattr(children, field) != getattr(result.population.take(np.zeros(200, int)), field)).any()
    assert space.from_indices(result.best)[0].resolution in (160, 192, 224)


def test_resnet_search_under_a_latency_budget_sums_the_tables_keys(tmp_path):
    """A `ms@` budget on OFA-ResNet50-D reads a table of its keys (as `ofa-tf bench lut --arch resnet50` writes)."""
    import yaml

    from ofa_tf.nas.efficiency_predictor import efficiency_model
    from ofa_tf.nas.latency_table import all_keys, subnet_keys
    from ofa_tf.families.resnet.space import ResNetSpace

    space = ResNetSpace(resolutions=(128, 160))
    rng = np.random.default_rng(0)
    entries = {key: {"mean": float(rng.uniform(0.1, 1.0))} for key in all_keys(space, space.resolutions)}
    lut = tmp_path / "phone.yaml"
    lut.write_text(yaml.safe_dump(entries))
    model = efficiency_model(parse_budget("12ms@phone"), space, lut_files=[str(lut)])
    score = lambda arch: arch.width_index.sum(1) + arch.expand_index.sum(1) + arch.depth.sum(1)  # noqa: E731
    result = EvolutionFinder(space, score, model.cost, 12.0, population_size=16, generations=5).run(seed=0)
    (best,) = space.from_indices(result.best)
    assert result.best_efficiency <= 12.0
    assert result.best_efficiency == pytest.approx(sum(entries[k]["mean"] for k in subnet_keys(space, best, best.resolution)))
    with pytest.raises(ConfigError, match="no entries for resolutions \\[224\\]"):
        efficiency_model(parse_budget("12ms@phone"), dataclasses.replace(space, resolutions=(160, 224)), lut_files=[str(lut)])
