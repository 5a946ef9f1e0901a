"""The package layout: no import cycles, dependencies that point down the pipeline, and a family that
is one registered thing (a throwaway family added from this file alone works end to end)."""

import ast
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"ofa_tf": ROOT / "ofa_tf", "ofa_tf.export": ROOT / "export", "ofa_tf.android_bench": ROOT / "android_bench"}
# each layer may import only layers of a lower rank (or its own)
RANKS = {
    "errors": 0, "io": 0, "_backend": 0,
    "data": 1, "space": 1, "layers": 1,
    "families": 2,
    "supernet": 3, "elastic": 3,
    "training": 4,
    "nas": 5,
    "interop": 6,
    "export": 7,
    "android_bench": 8,
    "cli": 9,
}


def _modules() -> dict[str, Path]:
    modules = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def _type_checking_nodes(tree: ast.AST) -> set[int]:
    """Imports under `if TYPE_CHECKING:` (annotations only: never run, so never a cycle)."""
    return {
        id(inner) for node in ast.walk(tree) if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING"
        for statement in node.body for inner in ast.walk(statement)
    }


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (lazy imports included)."""
    modules = _modules()

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        skipped = _type_checking_nodes(tree)
        names = []
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names += [f"{node.module}.{alias.name}" for alias in node.names]
        graph[module] = {target for target in map(known, (n for n in names if n.startswith("ofa_tf"))) if target and target != module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def layer_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "ofa_tf"


def test_the_package_has_no_import_cycles():
    assert cycles(import_graph()) == []


def test_a_new_cycle_is_found():
    graph = import_graph()
    graph["ofa_tf.space.choices"] = graph["ofa_tf.space.choices"] | {"ofa_tf.families.mbconv.space"}
    assert any({"ofa_tf.families.mbconv.space", "ofa_tf.space.choices"} <= set(component) for component in cycles(graph))


def test_dependencies_point_down_the_pipeline():
    graph = import_graph()
    assert {layer_of(module) for module in graph} - {"ofa_tf"} == set(RANKS)
    upward = sorted(
        f"{module} -> {target}" for module, targets in graph.items() for target in targets
        if "ofa_tf" not in (layer_of(module), layer_of(target)) and RANKS[layer_of(target)] > RANKS[layer_of(module)]
    )
    assert upward == []


def test_only_the_cli_imports_the_cli():
    graph = import_graph()
    assert sorted(m for m, targets in graph.items() if layer_of(m) != "cli" and any(layer_of(t) == "cli" for t in targets)) == []


def test_no_module_outside_the_families_imports_one():
    """Everything else reaches a family through the registry (`ofa_tf.space.registry`), by name; the one
    exception is `ofa_tf.elastic`, the front door of the family it makes (`families.keras`) from a Keras model."""
    graph = import_graph()
    reaching = sorted(
        f"{module} -> {target}" for module, targets in graph.items() for target in targets
        if layer_of(target) == "families" and layer_of(module) != "families"
        and not (layer_of(module) == "elastic" and target.startswith("ofa_tf.families.keras"))
    )
    assert reaching == []


# ----- a family is one registered thing -------------------------------------------------------------

@pytest.fixture
def throwaway_family(monkeypatch):
    """A two-stage MBConv family described here and registered for this test only."""
    from ofa_tf.families.mbconv import register_mbconv_family
    from ofa_tf.families.mbconv.description import Family, HeadConv
    from ofa_tf.space import registry

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    description = Family(
        name="tiny_mb", title="a throwaway MBConv family", official_class="none",
        stem="c8_s2_relu", first_block="c8_s1_relu", stages=("c16_s2_relu_se", "c24_s2_hswish"),
        head=(HeadConv("feature_mix", 64, "relu", use_bn=True, pooled=False, lut_kind="Conv_1"),),
        bn_epsilon=1e-3, default_width_mult=1.0,
    )
    register_mbconv_family(description)
    return description.name


def test_a_throwaway_family_trains_nothing_shared_and_runs_end_to_end(throwaway_family, tmp_path):
    from ofa_tf._backend import tf
    from ofa_tf.space.registry import family_names, make_space
    from ofa_tf.supernet.counting import count_costs, count_model_macs, count_model_params
    from ofa_tf.supernet.extract import extract_subnet
    from ofa_tf.supernet.storage import load_supernet, save_supernet, supernet_for_space

    assert throwaway_family in family_names()
    space = make_space(throwaway_family, n_classes=5, resolutions=(32,), depth_list=(1, 2), ks_list=(3, 5), expand_ratio_list=(2, 4))
    assert space.stage_widths == (8, 8, 16, 24, 64)
    net = supernet_for_space(space)
    config = space.sample(np.random.default_rng(0)).with_resolution(32)
    net.set_active_config(config)
    images = tf.random.stateless_uniform((2, 32, 32, 3), seed=(1, 2))
    subnet = extract_subnet(net, config)
    np.testing.assert_allclose(subnet(images).numpy(), net(images, training=False).numpy(), atol=1e-4, rtol=1e-4)
    assert count_costs(space, config, 32) == (count_model_macs(subnet), count_model_params(subnet))
    loaded = load_supernet(save_supernet(net, tmp_path / "supernet", resolutions=(32,)))
    assert loaded.space == net.space and json.loads((tmp_path / "supernet" / "supernet.json").read_text())["config"]["family"] == throwaway_family
    loaded.set_active_config(config)
    np.testing.assert_allclose(loaded(images, training=False).numpy(), net(images, training=False).numpy(), atol=1e-5)


def test_an_unknown_family_names_the_registered_ones():
    from ofa_tf.errors import ConfigError
    from ofa_tf.space.registry import make_space

    with pytest.raises(ConfigError, match=r"unknown supernet family 'resnet18': expected one of \['mbv3', 'proxyless', 'resnet50'\]"):
        make_space("resnet18")
