"""Configuration sections whose model is imported only when a file has the section.

Most files set a few of the configuration's sections. Defining and building the pydantic
models of all of them (authentication methods, access policies, retention, the s3 driver, the
cluster) was about 0.06 CPU s of every start (issue 13). A field annotated with
:func:`section` names its model as ``"module:Class"``: the parent model's schema holds a
function that imports the model and validates with it when the section is given, so an absent
section costs nothing, and a given one is validated exactly as a nested model would be (the
model's errors keep their paths: pydantic passes on a ``ValidationError`` raised inside a
validator with its locations under the field's). An instance of the model is taken as it is,
as pydantic takes a nested model's instance. The JSON Schema (``ocireg schema``) is the model's
own, and :mod:`ocireg.configcheck` finds the model for case-insensitive keys and "did you
mean" through :func:`section_model`.

Type checkers see the model itself: modules annotate with the class under ``TYPE_CHECKING``
and with ``section(...)`` at run time.
"""

from __future__ import annotations

import importlib
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.fields import FieldInfo
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

SECTION_KEY = "ocireg_section"


class Section:
    """The marker in ``Annotated[Any, Section("module:Class")]``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._model: type[BaseModel] | None = None

    def model(self) -> type[BaseModel]:
        if self._model is None:
            module, _, name = self.target.partition(":")
            self._model = getattr(importlib.import_module(module), name)
        return self._model

    def _validate(self, value: Any) -> BaseModel:
        model = self.model()
        return value if isinstance(value, model) else model.model_validate(value)

    def __get_pydantic_core_schema__(
        self, _source: Any, _handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self._validate, metadata={SECTION_KEY: self.target}
        )

    def __get_pydantic_json_schema__(
        self, _schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # as a nested model: defined once under $defs, referred to where used
        model = self.model().__pydantic_core_schema__
        if "ref" not in model:  # a schema pydantic did not name: spelled out in place
            return handler(model)
        reference = core_schema.definition_reference_schema(model["ref"])
        return handler(core_schema.definitions_schema(reference, [model]))

    def __repr__(self) -> str:
        return f"Section({self.target!r})"


def section(target: str) -> Any:
    """The annotation of a section validated by the model ``target`` (``"module:Class"``)."""
    return Annotated[Any, Section(target)]


def section_model(field: FieldInfo) -> type[BaseModel] | None:
    """The model of a field declared with :func:`section` (or an optional one), imported now."""
    for candidate in (field.annotation, *get_args(field.annotation)):
        if get_origin(candidate) is Annotated:
            for item in candidate.__metadata__:
                if isinstance(item, Section):
                    return item.model()
    return None


class SectionsJsonSchema(GenerateJsonSchema):
    """pydantic's JSON Schema, with a section's field untitled as a nested model's is."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        if SECTION_KEY in (schema.get("metadata") or {}):
            return False
        return super().field_title_should_be_set(schema)
