"""The README's and docs' Python snippets run as written, each in a fresh interpreter.

Snippets that read the official checkpoints a user downloads are skipped (their import is
tested against the official package); the one that reads a phone's latency table gets a
stand-in table of that name. The bash examples run in tests/test_examples.py.
"""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
# files a snippet reads that only a user who downloaded the official checkpoints has
DOWNLOADED = ("supernets/w1.2", "acc_predictor.pth", "_lookup_table.yaml")
# a phone's latency table (docs/android_bench.md), made by `bench lut --device adb`: a stand-in is written
PHONE_TABLE = "luts/pixel7.yaml"


def _snippets(*documents: Path) -> list[str]:
    snippets = []
    for document in documents or (README, *DOCS):
        blocks = re.findall(r"^( *)```python\n(.*?)^\1```", document.read_text(), flags=re.S | re.M)
        snippets += ["\n".join(line[len(indent):] for line in code.splitlines()) for indent, code in blocks]
    return snippets


def run_snippet(code: str, folder: Path) -> None:
    """Runs `code` in a fresh interpreter in `folder`; fails with its stderr's end when it fails."""
    result = subprocess.run([sys.executable, "-c", code], cwd=folder, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"snippet failed:\n{code}\n{result.stderr[-3000:]}"


def _phone_table_stand_in(folder: Path) -> None:
    """Every w1.0 block at 224 px at 1 ms, and a correction beside it: what the snippet reads from a phone's table."""
    import yaml

    from ofa_tf.nas.latency_correction import LinearCorrection, save_correction
    from ofa_tf.nas.latency_table import all_keys
    from ofa_tf.families.mbconv.space import SearchSpace

    path = folder / PHONE_TABLE
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({key: {"count": 1, "mean": 1.0} for key in all_keys(SearchSpace(width_mult=1.0), [224])}))
    save_correction(path, LinearCorrection(1.1, 0.2), {"stand_in": True})


def test_the_readme_has_snippets_and_names_what_they_download():
    assert len(_snippets(README)) >= 1 and len(_snippets()) >= 4
    # the official-files ones (docs/official.md): the only snippets skipped
    assert sum(any(name in code for name in DOWNLOADED) for code in _snippets()) == 2
    assert sum(PHONE_TABLE in code for code in _snippets(*DOCS)) == 1


@pytest.mark.parametrize("index", range(len(_snippets())))
def test_readme_snippet_runs(index, tmp_path):
    code = _snippets()[index]
    if any(name in code for name in DOWNLOADED):
        pytest.skip("reads official files a user downloads (their import is tested against the official package)")
    if PHONE_TABLE in code:
        _phone_table_stand_in(tmp_path)
    run_snippet(code, tmp_path)


def test_a_broken_snippet_fails(tmp_path):
    """The harness itself: a snippet whose API is gone fails the test, naming the error."""
    code = _snippets(README)[0].replace("get_active_subnet", "get_active_subnetwork")
    with pytest.raises(AssertionError, match="has no attribute 'get_active_subnetwork'"):
        run_snippet(code, tmp_path)
