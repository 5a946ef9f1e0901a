"""Writes a benchmark's measurements as JSON and a markdown table under benchmarks/results/."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import click

from ofa_tf.io import atomic_write_json, atomic_write_text

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Runs at other than the published settings (smoke tests, custom sizes) write here
# (git-ignored), or under $OFA_TF_BENCH_RESULTS when set, never over the published files.
CUSTOM_DIR = RESULTS_DIR / "custom"


def results_dir(published: bool) -> Path:
    """Where a run's files go: `results/` only for a run at the published settings."""
    override = os.environ.get("OFA_TF_BENCH_RESULTS")
    if override:
        return Path(override)
    return RESULTS_DIR if published else CUSTOM_DIR


def published_run(context=None, except_for: tuple[str, ...] = ()) -> bool:
    """Whether the running click command got only default options (its published settings), apart from
    the parameters `except_for` (e.g. a required input)."""
    import click
    from click.core import ParameterSource

    context = context or click.get_current_context()
    return all(
        context.get_parameter_source(name) == ParameterSource.DEFAULT for name in context.params if name not in except_for
    )


def machine_info() -> dict[str, Any]:
    import tensorflow as tf

    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_model": _cpuinfo("model name"),
        "cpu_vector_flags": " ".join(sorted(set(_cpuinfo("flags").split()) & VECTOR_FLAGS)),
        "cpu_count": os.cpu_count(),
        "commit": _commit(),
    }


def _commit() -> str:
    """The checkout's commit, "+changes" when files differ from it ("" outside a git checkout)."""
    def git(*args: str) -> str:
        result = subprocess.run(["git", *args], cwd=RESULTS_DIR.parent, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    return commit + ("+changes" if commit and git("status", "--porcelain", "--untracked-files=no") else "")


# the instruction sets that decide which TF / XNNPACK kernels run (figures differ with them)
VECTOR_FLAGS = {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8"}


def _cpuinfo(field: str) -> str:
    """The first `field` of /proc/cpuinfo ("" where there is none, e.g. not Linux)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return ""
    return next((line.split(":", 1)[1].strip() for line in lines if line.split(":")[0].strip() == field), "")


def write_results(
    name: str, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]], extra: dict, published: bool = True
) -> Path:
    """Saves `<name>.json` and `<name>.md` under `results_dir(published)`; returns the markdown path."""
    folder = results_dir(published)
    data = {"benchmark": name, "machine": machine_info(), "columns": list(columns), "rows": rows, **extra}
    atomic_write_json(folder / f"{name}.json", data)
    lines = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]
    lines += ["", *(f"- {key}: {value}" for key, value in extra.items()), f"- machine: {data['machine']}", ""]
    return atomic_write_text(folder / f"{name}.md", "\n".join(lines))


def ofa_tf_once(work: Path, name: str, *args) -> float:
    """Runs `ofa-tf ARGS` once (a rerun reuses the result); its wall time in seconds."""
    done = work / f"{name}.seconds"
    if not done.exists():
        command = [sys.executable, "-m", "ofa_tf.cli", *map(str, args)]
        print(f"[{name}] ofa-tf {' '.join(map(str, args))}", flush=True)
        started = time.perf_counter()
        with (work / f"{name}.log").open("w") as log:
            code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT)
        if code != 0:
            tail = (work / f"{name}.log").read_text().strip().splitlines()[-3:]
            raise click.ClickException(f"{name} exited {code}: {' / '.join(tail)}")
        done.write_text(f"{time.perf_counter() - started:.1f}")
    return float(done.read_text())
