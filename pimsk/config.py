"""Subject and workflow configuration: load YAML, validate against JSON schemas, resolve paths.

Errors are ConfigError naming the file and the offending field (as a dotted path).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from pimsk.errors import ConfigError
from pimsk.paths import data_root


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """A JSON schema shipped in pimsk/schemas (e.g. 'subject')."""
    text = resources.files("pimsk.schemas").joinpath(f"{name}.schema.json").read_text()
    return json.loads(text)


def _field_path(error) -> str:  # jsonschema.ValidationError
    parts = [str(p) for p in error.absolute_path]
    return ".".join(parts) if parts else "(top level)"


def validate(document: Any, schema_name: str, file: str | Path) -> None:
    """Raise ConfigError for the first schema violation, naming file and field."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(schema_name))
    errors = sorted(validator.iter_errors(document), key=lambda e: (len(list(e.absolute_path)), str(e.message)))
    if errors:
        err = errors[0]
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise ConfigError(f"{err.message}{more}", file=str(file), field=_field_path(err),
                          hint=f"see pimsk/schemas/{schema_name}.schema.json")


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; syntax errors become ConfigError with the line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError("file not found", file=str(path))
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise ConfigError(f"invalid YAML: {getattr(exc, 'problem', exc)}", file=str(path), field=where) from None


def load_mapping(path: str | Path, what: str) -> dict[str, Any]:
    """A YAML/JSON file that must hold a mapping (an empty file is ``{}``); ``what`` names it in errors
    (e.g. "run config"). Syntax errors and non-mappings become one ConfigError naming the file."""
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"the {what} must be a mapping", file=str(path))
    return dict(data)


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def resolve_path(value: str, base_dir: Path) -> Path:
    """Expand ``${PIMSK_DATA}`` (and other env vars) and make relative paths relative to ``base_dir``."""

    def repl(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "PIMSK_DATA":
            return str(data_root())
        if name not in os.environ:
            raise ConfigError(f"environment variable {name} is not set", field=value)
        return os.environ[name]

    expanded = _VAR.sub(repl, value)
    if expanded.startswith("builtin:"):
        return Path(expanded)
    p = Path(expanded)
    return p if p.is_absolute() else (base_dir / p).resolve()


def load_subject(path: str | Path) -> dict[str, Any]:
    """Load and validate a subject.yaml; returns the dict with ``_file`` and ``_dir`` added."""
    path = Path(path).resolve()
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise ConfigError("a subject file must be a mapping", file=str(path))
    validate(doc, "subject", path)
    names = [t["name"] for t in doc.get("trials", [])]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"duplicate trial name(s) {dupes}", file=str(path), field="trials")
    doc["_file"] = str(path)
    doc["_dir"] = str(path.parent)
    return doc
