"""Every benchmark the README, docs/ and benchmarks/README.md quote is listed in the "Where the figures
come from" table of benchmarks/README.md with the date its results file records, so a re-run that is not
carried into the documents fails here."""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
FIGURES = ROOT / "benchmarks" / "README.md"  # holds the table
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), FIGURES]


def quoted_benchmarks(text: str) -> set[str]:
    """The results files (without suffix) a document names, directly or through the script that writes them."""
    files = re.findall(r"benchmarks/results/([a-z_0-9.]+?)(?:\.(?:md|json|png|log|\*|\{))", text)
    scripts = re.findall(r"benchmarks/([a-z_0-9]+)\.py", text)
    return {name for name in files + scripts if (RESULTS / f"{name}.json").is_file()}


def figures_table(text: str) -> dict[str, str]:
    """Benchmark -> measured date, from the document's "Where the figures come from" table."""
    section = text.split("## Where the figures come from", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z_0-9.]+)` \| (\d{4}-\d\d-\d\d) \|", section, flags=re.M))


def test_every_quoted_benchmark_is_dated_in_the_figures_table():
    table = figures_table(FIGURES.read_text())
    quoted = set().union(*(quoted_benchmarks(document.read_text()) for document in DOCUMENTS))
    assert len(quoted) >= 10 and set(table) == quoted, (sorted(quoted - set(table)), sorted(set(table) - quoted))
    for name, date in table.items():
        measured = json.loads((RESULTS / f"{name}.json").read_text())["machine"]["date"][:10]
        assert date == measured, f"{name}: benchmarks/README.md says {date}, benchmarks/results/{name}.json {measured}"

