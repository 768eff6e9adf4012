"""GraphQL search over the cluster (zot issue #4215: search and the UI broken in scale-out).

Each top-level field of a query is one of three kinds:

* **scoped** to one repository (``ImageList(repo: "x")``, ``ExpandedRepoInfo``, ``Image``,
  ``Referrers``...): its owner answers it;
* **global** (``GlobalSearch``, ``RepoListWithNewestImage``, ``ImageList(repo: "")``, the
  CVE, digest, starred and bookmarked lists): every member answers for its own repositories
  and the lists are merged, sorted and paged as one member would over all of them;
* anything else (introspection, ``__typename``): this member answers.

A query whose fields all belong to one owner is proxied to it whole. Otherwise every member
gets the query with each global field's page widened to start at 0 (a page at ``offset`` over
the cluster is within the first ``offset + limit`` of every member) and with the fields that
sort it added under aliases of ours, then the answers are put together field by field.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from graphql import (
    ArgumentNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    NameNode,
    NullValueNode,
    ObjectFieldNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
    ValueNode,
    VariableNode,
    parse,
    print_ast,
    value_from_ast_untyped,
)

_SCOPED_BY = {
    "ExpandedRepoInfo": "repo",
    "ImageList": "repo",
    "Referrers": "repo",
    "Image": "image",
    "CVEListForImage": "image",
    "BaseImageList": "image",
    "DerivedImageList": "image",
    "ImageListWithCVEFixed": "image",
}
_REPO_LISTS = {"RepoListWithNewestImage", "StarredRepos", "BookmarkedRepos"}
_IMAGE_LISTS = {"ImageList", "ImageListForCVE", "ImageListForDigest"}
_KEYS = "_ocireg_keys"
_REPO_KEYS = ("Name", "Rank", "LastUpdated", "DownloadCount", "StarCount")
_IMAGE_KEYS = ("RepoName", "Tag", "LastUpdated", "DownloadCount")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def repository_of(image: str) -> str:
    """The repository of ``repo:tag``, ``repo@digest`` or ``repo``."""
    if "@" in image:
        return image.split("@", 1)[0]
    head, _, tail = image.rpartition(":")
    return head if head and "/" not in tail else image


@dataclass
class Field:
    key: str  # the response key: the alias, else the name
    node: FieldNode
    kind: str  # "scoped", "repos", "images", "search", "local"
    repository: str | None = None
    offset: int = 0
    limit: int | None = None
    sort: str | None = None


class Plan:
    """A parsed request and what each of its top-level fields is."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.document: DocumentNode = parse(body["query"])
        self.variables: dict[str, Any] = dict(body.get("variables") or {})
        self.operation_name = body.get("operationName")
        self.operation = self._operation()
        self.fragments = {
            d.name.value: d
            for d in self.document.definitions
            if isinstance(d, FragmentDefinitionNode)
        }
        self.fields = [self._classify(s) for s in self.operation.selection_set.selections]

    def _operation(self) -> OperationDefinitionNode:
        operations = [
            d for d in self.document.definitions if isinstance(d, OperationDefinitionNode)
        ]
        chosen = [
            o
            for o in operations
            if not self.operation_name or (o.name and o.name.value == self.operation_name)
        ]
        if len(chosen) != 1 or chosen[0].operation.value != "query":
            raise GraphQLError("not one query operation")
        return chosen[0]

    def _argument(self, node: FieldNode, name: str) -> Any:
        for argument in node.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        return None

    def _classify(self, node: Any) -> Field:
        if not isinstance(node, FieldNode):
            raise GraphQLError("fragments at the top of a query are not routed")
        key = (node.alias or node.name).value
        name = node.name.value
        if name in _SCOPED_BY and (value := self._argument(node, _SCOPED_BY[name])):
            repository = repository_of(str(value)) if _SCOPED_BY[name] == "image" else str(value)
            return Field(key, node, "scoped", repository)
        kind = "repos" if name in _REPO_LISTS else "images" if name in _IMAGE_LISTS else None
        kind = "search" if name == "GlobalSearch" else kind
        if kind is None:
            return Field(key, node, "local")
        page = self._argument(node, "requestedPage") or {}
        return Field(
            key,
            node,
            kind,
            offset=int(page.get("offset") or 0),
            limit=page.get("limit"),
            sort=page.get("sortBy"),
        )

    def answered_by(self, owner: Callable[[str], int], me: int) -> int | None:
        """The one member that can answer the whole query, or None when it takes every
        member (a global field, or fields of repositories with different owners)."""
        if any(f.kind in ("repos", "images", "search") for f in self.fields):
            return None
        members = {
            owner(f.repository) if f.kind == "scoped" and f.repository else me for f in self.fields
        }
        return members.pop() if len(members) == 1 else None

    def widened(self) -> dict[str, Any]:
        """The request every member gets: global pages from 0, their sort keys added."""
        variables = dict(self.variables)
        selections = [
            _widen(f.node, f, variables) if f.kind in ("repos", "images", "search") else f.node
            for f in self.fields
        ]
        op = self.operation
        operation = OperationDefinitionNode(
            operation=op.operation,
            name=op.name,
            variable_definitions=op.variable_definitions,
            directives=op.directives,
            selection_set=SelectionSetNode(selections=tuple(selections)),
        )
        definitions = tuple(operation if d is op else d for d in self.document.definitions)
        document = DocumentNode(definitions=definitions)
        body: dict[str, Any] = {"query": print_ast(document), "variables": variables}
        if self.operation_name:
            body["operationName"] = self.operation_name
        return body

    def response_keys(self, node: FieldNode, wanted: Iterable[str]) -> list[tuple[str, FieldNode]]:
        """The response keys under ``node`` of fields named in ``wanted`` (through fragments)."""
        found: list[tuple[str, FieldNode]] = []
        self._collect(node.selection_set, set(wanted), found)
        return found

    def _collect(
        self,
        selections: SelectionSetNode | None,
        wanted: set[str],
        found: list[tuple[str, FieldNode]],
    ) -> None:
        for each in selections.selections if selections else ():
            if isinstance(each, FieldNode) and each.name.value in wanted:
                found.append(((each.alias or each.name).value, each))
            elif isinstance(each, InlineFragmentNode):
                self._collect(each.selection_set, wanted, found)
            elif isinstance(each, FragmentSpreadNode) and each.name.value in self.fragments:
                self._collect(self.fragments[each.name.value].selection_set, wanted, found)


def _name(value: str) -> NameNode:
    return NameNode(value=value)


def _field(
    name: str,
    alias: str | None = None,
    arguments: tuple[ArgumentNode, ...] = (),
    selections: tuple[SelectionNode, ...] | None = None,
) -> FieldNode:
    return FieldNode(
        alias=_name(alias) if alias else None,
        name=_name(name),
        arguments=arguments,
        directives=(),
        selection_set=SelectionSetNode(selections=selections) if selections else None,
    )


def _keys_selection(alias: str, of: str, keys: tuple[str, ...]) -> FieldNode:
    return _field(of, alias, selections=tuple(_field(k) for k in keys))


def _widen(node: FieldNode, field: Field, variables: dict[str, Any]) -> FieldNode:
    arguments = tuple(node.arguments or ())
    if field.offset:
        limit = None if field.limit is None else field.offset + int(field.limit)
        arguments = tuple(_widen_page(a, limit, variables) for a in arguments)
    extra = [_keys_selection("_ocireg_page", "Page", ("TotalCount",))]
    if field.kind == "search":
        extra += [_keys_selection(_KEYS + "_repos", "Repos", _REPO_KEYS)]
        extra += [_keys_selection(_KEYS + "_images", "Images", _IMAGE_KEYS)]
    else:
        keys = _REPO_KEYS if field.kind == "repos" else _IMAGE_KEYS
        extra += [_keys_selection(_KEYS, "Results", keys)]
    selections = tuple(node.selection_set.selections) if node.selection_set else ()
    return FieldNode(
        alias=node.alias,
        name=node.name,
        arguments=arguments,
        directives=node.directives,
        selection_set=SelectionSetNode(selections=selections + tuple(extra)),
    )


def _widen_page(
    argument: ArgumentNode, limit: int | None, variables: dict[str, Any]
) -> ArgumentNode:
    """``requestedPage`` from offset 0 to ``limit``: in the variables when it is one."""
    if argument.name.value != "requestedPage":
        return argument
    if isinstance(argument.value, VariableNode):
        name = argument.value.name.value
        variables[name] = {**(variables.get(name) or {}), "offset": 0, "limit": limit}
        return argument
    if not isinstance(argument.value, ObjectValueNode):
        return argument
    fields = []
    for each in argument.value.fields:
        wanted = {"offset": 0, "limit": limit}.get(each.name.value, ...)
        if wanted is not ... and isinstance(each.value, VariableNode):
            variables[each.value.name.value] = wanted
        elif wanted is not ...:
            literal: ValueNode = (
                NullValueNode() if wanted is None else IntValueNode(value=str(wanted))
            )
            each = ObjectFieldNode(name=each.name, value=literal)
        fields.append(each)
    return ArgumentNode(name=argument.name, value=ObjectValueNode(fields=tuple(fields)))


def _time(value: Any) -> datetime:
    if not value:
        return _EPOCH
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return _EPOCH
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


Key = Callable[[dict[str, Any]], Any]


def _repo_name(r: dict[str, Any]) -> Any:
    return r.get("Name") or ""


def _image_name(i: dict[str, Any]) -> Any:
    return (i.get("RepoName") or "", i.get("Tag") or "")


_ORDERS: dict[str, dict[str, tuple[Key, bool]]] = {
    "repos": {
        "RELEVANCE": (lambda r: (r.get("Rank") or 0, _repo_name(r)), False),
        "UPDATE_TIME": (lambda r: (_time(r.get("LastUpdated")), _repo_name(r)), True),
        "ALPHABETIC_ASC": (_repo_name, False),
        "ALPHABETIC_DSC": (_repo_name, True),
        "DOWNLOADS": (lambda r: (r.get("DownloadCount") or 0, _repo_name(r)), True),
        "STARS": (lambda r: (r.get("StarCount") or 0, _repo_name(r)), True),
    },
    "images": {
        "RELEVANCE": (_image_name, False),
        "UPDATE_TIME": (lambda i: _time(i.get("LastUpdated")), True),
        "ALPHABETIC_ASC": (_image_name, False),
        "ALPHABETIC_DSC": (_image_name, True),
        "DOWNLOADS": (lambda i: i.get("DownloadCount") or 0, True),
    },
}


def _order(kind: str, sort: str | None, default: str) -> tuple[Key, bool]:
    """The sort key and direction ext/search uses for ``sort`` (see its ``_page``)."""
    orders = _ORDERS[kind]
    return orders.get(sort or default, orders["RELEVANCE"])


_DEFAULT_SORT = {"RepoListWithNewestImage": "UPDATE_TIME"}


class Merger:
    """Puts each member's answer to the widened request together into one answer."""

    def __init__(
        self, plan: Plan, answers: list[dict[str, Any]], owner: Callable[[str], int], me: int
    ) -> None:
        self.plan, self.answers, self.owner, self.me = plan, answers, owner, me

    def merged(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        errors: list[Any] = []
        for field in self.plan.fields:
            sources = self._sources(field)
            values = [(self.answers[i].get("data") or {}).get(field.key) for i in sources]
            errors += self._errors(field.key, sources)
            if field.kind in ("scoped", "local"):
                data[field.key] = values[0]
            elif all(isinstance(v, dict) for v in values):
                data[field.key] = self._merge_lists(field, [v for v in values if v is not None])
            else:
                data[field.key] = None  # a member failed it: its error says why
        unplaced = {
            json.dumps(e, sort_keys=True): e
            for a in self.answers
            for e in a.get("errors") or ()
            if not e.get("path")
        }
        errors += list(unplaced.values())
        answer: dict[str, Any] = {"data": data}
        if errors:
            answer["errors"] = errors
        return answer

    def _sources(self, field: Field) -> list[int]:
        if field.kind == "scoped" and field.repository:
            return [self.owner(field.repository)]
        if field.kind == "local":
            return [self.me]
        return list(range(len(self.answers)))

    def _errors(self, key: str, sources: list[int]) -> list[Any]:
        seen: dict[str, Any] = {}
        for i in sources:
            for error in self.answers[i].get("errors") or ():
                if (error.get("path") or [None])[0] == key:
                    seen.setdefault(error.get("message", ""), error)
        return list(seen.values())

    def _merge_lists(self, field: Field, values: list[dict[str, Any]]) -> dict[str, Any]:
        plan = self.plan
        default = _DEFAULT_SORT.get(field.node.name.value, "RELEVANCE")
        lists = ("Repos", "Images") if field.kind == "search" else ("Results",)
        hidden = {"Repos": _KEYS + "_repos", "Images": _KEYS + "_images", "Results": _KEYS}
        merged: dict[str, Any] = {}
        shown = 0
        for list_name in lists:
            kind = "images" if list_name == "Images" or field.kind == "images" else "repos"
            key, descending = _order(kind, field.sort, default)
            entries = [
                (key(k), member, index)
                for member, value in enumerate(values)
                for index, k in enumerate(value.get(hidden[list_name]) or [])
            ]
            entries.sort(key=lambda e: e[0], reverse=descending)
            end = None if field.limit is None else field.offset + int(field.limit)
            chosen = entries[field.offset : end]
            shown = max(shown, len(chosen))
            for response_key, _ in plan.response_keys(field.node, [list_name]):
                merged[response_key] = [values[m][response_key][i] for _, m, i in chosen]
        for response_key, _ in plan.response_keys(field.node, ["Layers"]):
            merged[response_key] = [x for v in values for x in v.get(response_key) or []]
        total = sum((v.get("_ocireg_page") or {}).get("TotalCount", 0) for v in values)
        for response_key, page_node in plan.response_keys(field.node, ["Page"]):
            counts = {"TotalCount": total, "ItemCount": shown}
            merged[response_key] = {
                k: counts.get(node.name.value) for k, node in plan.response_keys(page_node, counts)
            } | {k: "PageInfo" for k, _ in plan.response_keys(page_node, ["__typename"])}
        for response_key, _ in plan.response_keys(field.node, ["__typename"]):
            merged[response_key] = values[0].get(response_key)
        return merged
