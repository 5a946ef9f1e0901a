"""The README's Python snippets run as written (those that need no downloaded file)."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
# files a snippet reads that only a user who downloaded the official checkpoints has
DOWNLOADED = ("supernets/w1.2", "acc_predictor.pth", "_lookup_table.yaml")


def _snippets() -> list[str]:
    blocks = re.findall(r"^( *)```python\n(.*?)^\1```", README.read_text(), flags=re.S | re.M)
    return ["\n".join(line[len(indent):] for line in code.splitlines()) for indent, code in blocks]


def test_the_readme_has_snippets_and_names_what_they_download():
    snippets = _snippets()
    assert len(snippets) >= 4
    assert sum(any(name in code for name in DOWNLOADED) for code in snippets) == 2  # the official-files ones


@pytest.mark.parametrize("index", range(len(_snippets())))
def test_readme_snippet_runs(index, tmp_path, monkeypatch):
    code = _snippets()[index]
    if any(name in code for name in DOWNLOADED):
        pytest.skip("reads official files a user downloads (their import is tested against the official package)")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"README.md snippet {index + 1}", "exec"), {})
