"""Configs are dataclasses with working defaults; YAML files and command-line flags only override them."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from tsvq.errors import ConfigError

T = TypeVar("T")


def from_dict(cls: type[T], values: dict[str, Any] | None, where: str = "config") -> T:
    """Build dataclass ``cls`` from a plain dict, recursing into nested dataclasses; unknown keys are errors."""
    values = dict(values or {})
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown} for {cls.__name__}; known keys: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in values.items():
        hint = _dataclass_in(hints[name])
        if hint is not None and isinstance(value, dict):
            value = from_dict(hint, value, f"{where}.{name}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error


def as_config(cls: type[T], value: Any, where: str) -> T:
    """A config section given as a dict (YAML, or Python for brevity) as its dataclass; unknown keys are errors."""
    return value if isinstance(value, cls) else from_dict(cls, value, where)


def _dataclass_in(hint) -> type | None:
    """The dataclass a field holds, also when it is optional (``TableConfig | None``)."""
    if dataclasses.is_dataclass(hint):
        return hint
    found = [arg for arg in typing.get_args(hint) if dataclasses.is_dataclass(arg)]
    return found[0] if len(found) == 1 else None


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config with errors that name the file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError as error:
        raise ConfigError(f"{path}: config file not found") from error
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML ({error})") from error
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level")
    return data


def parse_override(text: str) -> tuple[list[str], Any]:
    """``a.b=value`` -> (['a', 'b'], parsed value); the value is read as YAML so numbers and lists work."""
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key=value (e.g. training.max_steps=200)")
    key, raw = text.split("=", 1)
    return key.strip().split("."), yaml.safe_load(raw)


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    for text in overrides or []:
        keys, value = parse_override(text)
        target = values
        for key in keys[:-1]:  # a number indexes a list: source.0.records picks the first source
            target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
        if isinstance(target, list):
            target[int(keys[-1])] = value
        else:
            target[keys[-1]] = value
    return values
