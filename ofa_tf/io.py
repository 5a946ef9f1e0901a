"""File output and model input: a killed process never leaves a half-written artifact; a
subnet is a `.keras` file or a folder holding one."""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from ofa_tf.errors import ConfigError, DataError

SUBNET_FILE = "subnet.keras"  # the model in a specialized or fine-tuned subnet folder


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Writes `data` to a temporary file in the same folder, then renames it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, data: Any) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike, remedy: str) -> Any:
    """The JSON file ofa-tf wrote at `path`; one that is damaged (cut short by a full disk, edited by
    hand) is a one-line `ConfigError` naming it and `remedy` (which step writes it again)."""
    try:
        return json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        reason = f"{error.msg} at line {error.lineno}" if isinstance(error, json.JSONDecodeError) else "not text"
        raise ConfigError(f"{path} is damaged (not valid JSON: {reason}): {remedy}") from None


def atomic_save_figure(figure: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """Renders a matplotlib figure as PNG in memory, then writes it to `path` atomically."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", **savefig_kwargs)
    return atomic_write_bytes(path, buffer.getvalue())


def atomic_save_model(model: Any, path: str | os.PathLike) -> Path:
    """Saves a Keras model (`.keras`) to a temporary file in the same folder, then renames it over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.name}.") as tmp:
        tmp_path = Path(tmp) / path.name
        model.save(tmp_path)
        os.replace(tmp_path, path)
    return path


def model_file(path: str | os.PathLike) -> Path:
    """The `.keras` file named by `path` (itself, or `subnet.keras` in a run folder)."""
    path = Path(path)
    if path.is_dir():
        candidate = path / SUBNET_FILE
        if not candidate.is_file():
            raise DataError(f"{path} has no {SUBNET_FILE}: give a .keras file or a specialize run folder")
        return candidate
    if not path.is_file():
        raise DataError(f"model {path} not found: give a .keras file or a specialize run folder")
    if path.suffix != ".keras":
        raise DataError(f"model {path} is not a .keras file")
    return path


def load_model(path: str | os.PathLike) -> Any:
    """Loads a `.keras` model (no custom objects needed for extracted subnets)."""
    from ofa_tf._backend import keras

    file = model_file(path)
    try:
        return keras.saving.load_model(file, compile=False)
    except Exception as error:  # corrupt zip, unknown layer, ...: one line for the user
        raise DataError(f"cannot load {file}: {type(error).__name__}: {error}".splitlines()[0]) from None
