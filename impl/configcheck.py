"""How a configuration is read and its problems said, for the core and for extension sections.

Keys match a model's spelling case-insensitively, as zot (viper) reads them; every problem is one
``file: key.path: why`` line, an unknown key naming the nearest valid one. The lowest layer of
configuration handling: :mod:`ocireg.config` and :mod:`ocireg.extensions.loading` both use it.
"""

from __future__ import annotations

import difflib
from types import UnionType
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ocireg.sections import section_model


class ConfigError(Exception):
    """A configuration that cannot be used; ``str()`` has one ``file: key.path: why`` per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def normalise_keys(value: Any, model: type[BaseModel] | None) -> Any:
    """Rename keys to the model's spelling, case-insensitively, section by section."""
    if isinstance(value, list) and model is not None:
        return [normalise_keys(item, model) for item in value]
    if not isinstance(value, dict) or model is None:
        return value
    spelling = {name.lower(): name for name in model.model_fields}
    result: dict[str, Any] = {}
    for key, item in value.items():
        name = spelling.get(str(key).lower(), str(key))
        result[name] = normalise_keys(item, _submodel(model, name))
    return result


def _submodel(model: type[BaseModel], name: str) -> type[BaseModel] | None:
    field = model.model_fields.get(name)
    if field is None:
        return None
    lazy = section_model(field)
    if lazy is not None:  # its model is imported now: the file has the section
        return lazy
    for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def validation_problems(
    source: str, error: ValidationError, prefix: str = "", model: type[BaseModel] | None = None
) -> list[str]:
    """One ``source: key.path: why`` line per problem, paths under ``prefix``; an unknown key
    of ``model`` names the nearest valid one."""
    lines = []
    for item in error.errors():
        parts = [prefix] if prefix else []
        # a mapping key that fails (a repository pattern) is named by the key itself
        loc = [str(part) for part in item["loc"] if part != "[key]"]
        where = ".".join([*parts, *loc]) or "(top level)"
        why = item["msg"]
        if item["type"] == "extra_forbidden":
            why = "unknown key" + _did_you_mean(model, item["loc"])
        lines.append(f"{source}: {where}: {why}")
    return lines


def _did_you_mean(model: type[BaseModel] | None, loc: tuple[int | str, ...]) -> str:
    """`` (did you mean rootDirectory?)`` when the unknown key at ``loc`` is close to a key
    of the section it is in."""
    keys = _keys_at(model, loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), keys, n=1, cutoff=0.6) if keys else []
    return f" (did you mean {close[0]}?)" if close else ""


def _keys_at(annotation: Any, loc: tuple[int | str, ...]) -> list[str]:
    """The keys of the section at ``loc`` inside ``annotation`` (a model, or lists, dicts and
    optionals of models); [] where that is not a model."""
    for part in (*loc, None):
        while get_origin(annotation) in (Union, UnionType):
            annotation = next(a for a in get_args(annotation) if a is not type(None))
        if get_origin(annotation) in (list, dict):
            annotation = get_args(annotation)[-1]  # an item, or a value: the part is its index
            if part is not None:
                continue
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        if part is None:
            return list(annotation.model_fields)
        field = annotation.model_fields.get(str(part))
        if field is None:
            return []
        annotation = section_model(field) or field.annotation
    return []
