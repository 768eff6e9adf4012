"""What a GraphQL query may ask for, checked before it runs (``extensions.search.limits``).

A query is parsed with at most ``maxTokens`` tokens, validated against the schema, then walked
once, fragments expanded, to find its depth, its aliases, the page sizes it asks for and its
cost: the number of result fields it can produce, where a list counts as many items as its page
(``requestedPage.limit``, or ``maxPageSize`` for a page without a limit) or, without a page,
:data:`LIST_GUESS` items. The walk stops as soon as a limit is passed, so a query built to be
expensive to walk (fragments spreading fragments) costs no more to refuse than ``maxCost``
steps. The error names the limit's configuration key.

The estimate cannot know how big the data is (a repository of 10,000 tags, an image of 28,000
layers): ``queryTimeout`` bounds what the estimate misses (see :mod:`.execution`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    get_named_type,
    parse,
    validate,
    value_from_ast_untyped,
)
from graphql.type.introspection import SchemaMetaFieldDef, TypeMetaFieldDef

from .settings import SearchLimits

LIST_GUESS = 10  # items assumed in a list whose size the query does not set
KEY = "extensions.search.limits"
PAGE_ARGUMENT = "requestedPage"


class LimitExceeded(Exception):
    """A query asks for more than a limit allows; the message names the limit."""

    def __init__(self, limit: str, allowed: int, found: str) -> None:
        super().__init__(f"{found}, more than {KEY}.{limit} allows ({allowed})")
        self.limit = limit


@dataclass
class Checked:
    """A query that passed: what the walk measured (for logs and tests)."""

    document: DocumentNode
    depth: int
    aliases: int
    cost: int


def parse_and_validate(
    schema: GraphQLSchema, query: str, limits: SearchLimits
) -> DocumentNode | list[GraphQLError]:
    """The parsed document, or the errors to answer (syntax, schema validation, token limit)."""
    try:
        document = parse(query, max_tokens=limits.maxTokens)
    except GraphQLError as error:
        if "Parsing aborted" in error.message:  # graphql-core's words for max_tokens
            message = f"more than {limits.maxTokens} tokens, more than {KEY}.maxTokens allows"
            return [GraphQLError(message, extensions={"limit": "maxTokens"})]
        return [error]
    errors = validate(schema, document)
    return errors if errors else document


def check(
    schema: GraphQLSchema,
    document: DocumentNode,
    limits: SearchLimits,
    variables: dict[str, Any] | None,
    operation_name: str | None,
) -> Checked:
    """Measure the operation that would run; :class:`LimitExceeded` at the first limit passed."""
    operation = _operation(document, operation_name)
    walk = _Walk(schema, limits, variables or {}, document)
    if operation is not None:
        root = schema.get_root_type(operation.operation)
        if root is not None:
            walk.selections(operation.selection_set, root, 1, 1, None)
    return Checked(document, walk.deepest, walk.aliases, walk.cost)


def _operation(document: DocumentNode, name: str | None) -> OperationDefinitionNode | None:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    for operation in operations:
        if name is None or (operation.name is not None and operation.name.value == name):
            return operation
    return None  # execution answers the error


class _Walk:
    def __init__(
        self,
        schema: GraphQLSchema,
        limits: SearchLimits,
        variables: dict[str, Any],
        document: DocumentNode,
    ) -> None:
        self.schema = schema
        self.limits = limits
        self.variables = variables
        self.fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        self.deepest = 0
        self.aliases = 0
        self.cost = 0

    def selections(
        self,
        selection_set: SelectionSetNode | None,
        parent: Any,
        items: int,
        depth: int,
        page: int | None,
    ) -> None:
        """Walk one selection set of ``parent`` (an object type), selected ``items`` times;
        ``page`` is the page size its lists get (from the field that took requestedPage)."""
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                self.field(selection, parent, items, depth, page)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                kind = self.schema.get_type(condition.name.value) if condition else parent
                self.selections(selection.selection_set, kind, items, depth, page)
            elif isinstance(selection, FragmentSpreadNode):
                fragment = self.fragments.get(selection.name.value)
                if fragment is not None:
                    kind = self.schema.get_type(fragment.type_condition.name.value)
                    self.selections(fragment.selection_set, kind, items, depth, page)

    def field(self, node: FieldNode, parent: Any, items: int, depth: int, page: int | None) -> None:
        if node.alias is not None:
            self.aliases += 1
            if self.aliases > self.limits.maxAliases:
                raise LimitExceeded("maxAliases", self.limits.maxAliases,
                                    f"more than {self.limits.maxAliases} aliases")  # fmt: skip
        if depth > self.limits.maxDepth:
            raise LimitExceeded("maxDepth", self.limits.maxDepth, f"fields nested {depth} deep")
        self.deepest = max(self.deepest, depth)
        self.cost += items
        if self.cost > self.limits.maxCost:
            raise LimitExceeded("maxCost", self.limits.maxCost,
                                f"a cost of more than {self.limits.maxCost}")  # fmt: skip
        definition = _field_definition(parent, node.name.value)
        if definition is None or node.selection_set is None:
            return  # __typename, or a leaf
        asked = self.page_size(node, definition)
        if _is_list(definition.type):
            items *= page if page is not None else LIST_GUESS
            page = None  # a page sizes the first list below the field that asked for it
        page = asked if asked is not None else page
        kind = get_named_type(definition.type)
        self.selections(node.selection_set, kind, items, depth + 1, page)

    def page_size(self, node: FieldNode, definition: Any) -> int | None:
        """The page a field asks for: its limit, maxPageSize without one (the field then
        answers everything there is, as zot's does), None for a field without paging."""
        if PAGE_ARGUMENT not in definition.args:
            return None
        for argument in node.arguments or ():
            if argument.name.value != PAGE_ARGUMENT:
                continue
            value = value_from_ast_untyped(argument.value, self.variables)
            limit = value.get("limit") if isinstance(value, dict) else None
            if not isinstance(limit, int) or limit <= 0:
                break
            if limit > self.limits.maxPageSize:
                raise LimitExceeded("maxPageSize", self.limits.maxPageSize,
                                    f"a page of {limit}")  # fmt: skip
            return limit
        return self.limits.maxPageSize


def _field_definition(parent: Any, name: str) -> Any:
    if name == "__schema":
        return SchemaMetaFieldDef
    if name == "__type":
        return TypeMetaFieldDef
    if isinstance(parent, GraphQLObjectType):
        return parent.fields.get(name)
    fields = getattr(parent, "fields", None)  # an interface
    return fields.get(name) if isinstance(fields, dict) else None


def _is_list(kind: Any) -> bool:
    while isinstance(kind, GraphQLNonNull):
        kind = kind.of_type
    return isinstance(kind, GraphQLList)
