"""Every benchmark the README quotes is listed in its "Where the figures come from" table with the
date its results file records, so a re-run that is not carried into the README fails here."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"


def quoted_benchmarks(readme: str) -> set[str]:
    """The results files (without suffix) the README names, directly or through the script that writes them."""
    files = re.findall(r"benchmarks/results/([a-z_0-9.]+?)(?:\.(?:md|json|png|log|\*|\{))", readme)
    scripts = re.findall(r"benchmarks/([a-z_0-9]+)\.py", readme)
    return {name for name in files + scripts if (RESULTS / f"{name}.json").is_file()}


def figures_table(readme: str) -> dict[str, str]:
    """Benchmark -> measured date, from the README's table."""
    section = readme.split("## Where the figures come from", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z_0-9.]+)` \| (\d{4}-\d\d-\d\d) \|", section, flags=re.M))


def test_every_quoted_benchmark_is_dated_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    table = figures_table(readme)
    quoted = quoted_benchmarks(readme)
    assert len(quoted) >= 10 and set(table) == quoted, (sorted(quoted - set(table)), sorted(set(table) - quoted))
    for name, date in table.items():
        measured = json.loads((RESULTS / f"{name}.json").read_text())["machine"]["date"][:10]
        assert date == measured, f"{name}: the README says {date}, benchmarks/results/{name}.json {measured}"
