"""Build frozen dataclasses from plain YAML data, checking every key and value against the type hints.

An unknown or missing key, a wrong type or an invalid choice raises :class:`~mtbert.errors.ConfigError` with one
line that names the dotted key and what is allowed. A dataclass checks its own values in ``__post_init__`` and
raises ``ValueError("<field>: <problem>")``; :func:`build` prefixes the section, so the user reads
``train.lr: must be a finite number > 0, got nan``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from mtbert.errors import ConfigError


def _describe(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", str(tp))


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        return build(tp, value, key)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise ConfigError(f"{key}: got {value!r}, expected {_describe(tp)}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: got {value!r}, expected a list")
        (item,) = {a for a in typing.get_args(tp) if a is not Ellipsis}
        return tuple(_coerce(v, item, f"{key}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: got {value!r}, expected a mapping")
        _, item = typing.get_args(tp)
        return {k: _coerce(v, item, f"{key}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(options) != 1 or len(typing.get_args(tp)) != 2:
            raise TypeError(f"unsupported config type {tp}")
        return None if value is None else _coerce(value, options[0], key)
    if tp is Any:
        return value
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp is float and isinstance(value, str):  # YAML reads 5e-5 (no dot) as a string
        try:
            return float(value)
        except ValueError:
            pass
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise ConfigError(f"{key}: got {value!r}, expected {_describe(tp)}")


def build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'params'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    where = f"{prefix}." if prefix else ""
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key {where}{unknown[0]}; allowed keys: {', '.join(sorted(fields))}")
    required = [
        n for n, f in fields.items() if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [n for n in required if n not in data]
    if missing:
        raise ConfigError(f"missing key {where}{missing[0]} (params.yaml spells out every key)")
    values = {k: _coerce(v, hints[k], f"{where}{k}") for k, v in data.items()}
    try:
        return cls(**values)
    except ValueError as err:  # the dataclass's own rules: "<field>: <problem>"
        raise ConfigError(f"{where}{err}") from None


@contextmanager
def prefixed(prefix: str) -> Iterator[None]:
    """Re-raise a ``ValueError`` from an owner's check with ``prefix`` (a params key) in front of its message."""
    try:
        yield
    except ValueError as err:
        raise ValueError(f"{prefix}{err}") from None
