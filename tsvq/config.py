"""Configs are dataclasses with working defaults; YAML files and command-line flags only override them."""

from __future__ import annotations

import collections.abc
import dataclasses
import types
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
        else:
            value = _typed(value, hints[name], f"{where}: {name}")
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{where}: {error}") from error


def _typed(value: Any, hint: Any, where: str) -> Any:
    """``value`` checked against a field's type; a number written as text where a float is expected (YAML 1.1
    reads ``3e-4`` as a string) is read as the number."""
    if _accepts(hint, float) and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    if not _conforms(value, hint):
        raise ConfigError(f"{where} = {value!r} ({type(value).__name__}): expected {_describe(hint)}")
    return value


def _conforms(value: Any, hint: Any) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, TypeVar):
        return True
    if hint is type(None):
        return value is None
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arg) for arg in args)
    if origin is typing.Literal:
        return value in args
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin in (list, tuple, set, frozenset, collections.abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(_conforms(v, a) for v, a in zip(value, args))
        return not args or all(_conforms(v, args[0]) for v in value)
    if origin is dict or hint is dict:
        return isinstance(value, dict)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, (hint, dict))
    return True  # a type this check does not know: the dataclass itself decides


def _accepts(hint: Any, kind: type) -> bool:
    return hint is kind or kind in typing.get_args(hint)


def _describe(hint: Any) -> str:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in args)
    if origin is tuple and args and args[-1] is not Ellipsis:
        return f"a list of {len(args)} values ({', '.join(_describe(a) for a in args)})"
    if origin in (list, tuple, collections.abc.Sequence):
        return f"a list of {_describe(args[0])}" if args else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in args)
    names = {type(None): "none", bool: "true or false", int: "an integer", float: "a number", str: "text"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def check_ranges(
    config: Any,
    positive: tuple[str, ...] = (),
    non_negative: tuple[str, ...] = (),
    choices: dict[str, tuple] | None = None,
) -> None:
    """Refuse settings out of range (``None`` means unset and passes); called from configs' ``__post_init__``."""
    for name in positive:
        value = getattr(config, name)
        if value is not None and not value > 0:
            raise ConfigError(f"{name} = {value!r}: must be greater than 0")
    for name in non_negative:
        value = getattr(config, name)
        if value is not None and not value >= 0:
            raise ConfigError(f"{name} = {value!r}: must be 0 or more")
    for name, allowed in (choices or {}).items():
        if getattr(config, name) not in allowed:
            raise ConfigError(
                f"{name} = {getattr(config, name)!r}: expected one of {[a for a in allowed if a is not None]}"
            )


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
