"""Laws as data: dated parameters read from the YAML files beside this module.

Every parameter is a list of dated values; each value has `valid_from`, `valid_to` (inclusive,
null = open-ended), `value` and `source` (the legal act it comes from), and may say
`our_model: true` when the figure is our simplification rather than a quoted law. The rules ask
`ps.get(name, on)`; they never hold a figure in code.

A parameter's name is its key path inside a file, dotted: `mrp`, `birth_benefit.fourth_plus_mrp`.
Names are global across files (a duplicate is an error), the file split is only for readers.

Exceptions::

    ValueError
     └── ParameterError              .code is one of:
           PARAMETER_OVERLAP         two validity periods of one parameter overlap
           PARAMETER_MISSING         no such parameter, or no value covers the date
           PARAMETER_INVALID         a malformed entry (bad dates, no source, no value)
           PARAMETER_DUPLICATE       the same name is defined twice
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

DEFAULT_PATH = Path(__file__).parent

Value = int | float | Mapping[Any, Any]


class ParameterError(ValueError):
    """A parameter file or lookup is wrong; `code` is stable, `name` says which parameter."""

    def __init__(self, code: str, message: str, *, name: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.name = name


@dataclass(frozen=True, slots=True)
class DatedValue:
    """One value of a parameter and the period (inclusive) in which the law sets it."""

    valid_from: date
    valid_to: date | None
    value: Value
    source: str
    our_model: bool = False

    def covers(self, on: date) -> bool:
        """Whether this value is the one in force on `on`."""
        return self.valid_from <= on and (self.valid_to is None or on <= self.valid_to)


@dataclass(frozen=True, slots=True)
class Parameter:
    """A named parameter with its history, sorted by `valid_from`."""

    name: str
    description: str
    unit: str
    values: tuple[DatedValue, ...]

    def at(self, on: date) -> DatedValue:
        """The dated value in force on `on`, or PARAMETER_MISSING."""
        for entry in self.values:
            if entry.covers(on):
                return entry
        raise ParameterError(
            "PARAMETER_MISSING",
            f"no value of {self.name!r} covers {on.isoformat()}",
            name=self.name,
        )


class ParameterSet:
    """All parameters of one set of files, with a short content hash as its version."""

    def __init__(self, parameters: Mapping[str, Parameter], version: str) -> None:
        self._parameters = dict(parameters)
        self.version = version

    def __contains__(self, name: str) -> bool:
        return name in self._parameters

    def names(self) -> list[str]:
        """All parameter names, sorted."""
        return sorted(self._parameters)

    def parameter(self, name: str) -> Parameter:
        """The parameter called `name`, or PARAMETER_MISSING."""
        try:
            return self._parameters[name]
        except KeyError:
            raise ParameterError("PARAMETER_MISSING", f"no parameter {name!r}", name=name) from None

    def get(self, name: str, on: date) -> Value:
        """The value of `name` in force on `on` (int, float or mapping)."""
        return self.parameter(name).at(on).value


def load_parameters(path: str | Path | None = None) -> ParameterSet:
    """Load every *.yaml under `path` (default: this package) into a validated ParameterSet."""
    root = Path(path) if path is not None else DEFAULT_PATH
    files = sorted(root.glob("*.yaml")) if root.is_dir() else [root]
    digest = hashlib.sha256()
    parameters: dict[str, Parameter] = {}
    for file in files:
        raw = file.read_bytes()
        # The version covers names and contents, so renaming a file changes it too.
        digest.update(file.name.encode() + b"\0" + raw + b"\0")
        try:
            document = yaml.safe_load(raw) or {}
        except yaml.YAMLError as exc:
            raise ParameterError(
                "PARAMETER_INVALID", f"{file.name}: not valid YAML: {exc}"
            ) from exc
        if not isinstance(document, dict):
            raise ParameterError("PARAMETER_INVALID", f"{file.name}: top level must be a mapping")
        for name, node in _walk(document, prefix=""):
            if name in parameters:
                raise ParameterError("PARAMETER_DUPLICATE", f"{name!r} defined twice", name=name)
            parameters[name] = _parse_parameter(name, node, file.name)
    return ParameterSet(parameters, version=digest.hexdigest()[:12])


@lru_cache(maxsize=1)
def default_parameters() -> ParameterSet:
    """The parameter set shipped with the code, loaded once per process."""
    return load_parameters()


def _walk(node: Mapping[str, Any], *, prefix: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Yield (dotted name, node) for every mapping that has a `values` list."""
    for key, child in node.items():
        name = f"{prefix}{key}"
        if isinstance(child, dict) and "values" in child:
            yield name, child
        elif isinstance(child, dict):
            yield from _walk(child, prefix=name + ".")
        else:
            raise ParameterError(
                "PARAMETER_INVALID",
                f"{name!r}: expected a group or a parameter with values",
                name=name,
            )


def _parse_parameter(name: str, node: Mapping[str, Any], file_name: str) -> Parameter:
    entries = []
    for raw in node["values"] or []:
        valid_from, valid_to = raw.get("valid_from"), raw.get("valid_to")
        if not isinstance(valid_from, date) or not (valid_to is None or isinstance(valid_to, date)):
            raise ParameterError("PARAMETER_INVALID", f"{file_name}: {name}: bad dates", name=name)
        if valid_to is not None and valid_to < valid_from:
            raise ParameterError(
                "PARAMETER_INVALID", f"{file_name}: {name}: valid_to < valid_from", name=name
            )
        if "value" not in raw or not raw.get("source"):
            raise ParameterError(
                "PARAMETER_INVALID", f"{file_name}: {name}: value and source required", name=name
            )
        entries.append(
            DatedValue(
                valid_from,
                valid_to,
                raw["value"],
                str(raw["source"]),
                bool(raw.get("our_model", False)),
            )
        )
    if not entries:
        raise ParameterError("PARAMETER_INVALID", f"{file_name}: {name}: no values", name=name)
    entries.sort(key=lambda e: e.valid_from)
    for earlier, later in itertools.pairwise(entries):
        # Sorted by start, so periods overlap exactly when one starts before the previous ends.
        if earlier.valid_to is None or later.valid_from <= earlier.valid_to:
            raise ParameterError(
                "PARAMETER_OVERLAP",
                f"{file_name}: {name}: {earlier.valid_from} and {later.valid_from} periods overlap",
                name=name,
            )
    return Parameter(
        name, str(node.get("description", "")), str(node.get("unit", "")), tuple(entries)
    )
