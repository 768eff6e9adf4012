"""``GET /v2/_catalog`` over the cluster: every member's page, merged.

Each member is asked for the same page (``n`` entries after ``last``, the caller's credentials,
so each keeps only what the caller may read); the first ``n`` of their union are exactly the
first ``n`` after ``last`` over the whole cluster, and a next page exists when the union has
more or any member said it has more (its ``Link``). A member that cannot be reached fails the
catalog (503) rather than give one that silently lacks its repositories.
"""

from __future__ import annotations

import json

import httpx
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ocireg.cluster.fanout import Answer, ask_all
from ocireg.errors import RegistryError, error_response
from ocireg.handlers.base import next_link

_PASSED_ON = ("www-authenticate", "content-type", "retry-after")


def _query(scope: Scope) -> dict[str, str]:
    from urllib.parse import parse_qsl

    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))


def passed_on(answer: httpx.Response) -> Response:
    """A member's refusal (401, 403, 400, 429...) as it gave it."""
    headers = {k: v for k, v in answer.headers.items() if k.lower() in _PASSED_ON}
    return Response(answer.content, answer.status_code, headers=headers)


def merge(answers: list[Answer], n: int | None) -> tuple[list[str], bool]:
    names: set[str] = set()  # a union: members on shared storage list the same names
    more = False
    for answer in answers:
        document = answer.document()
        names.update(document.get("repositories", []) if isinstance(document, dict) else [])
        more = more or "link" in answer.response.headers
    merged = sorted(names)
    if n is None:
        return merged, False
    return merged[:n], more or len(merged) > n


async def fan_out(
    client: httpx.AsyncClient, bases: dict[str, str], scope: Scope, receive: Receive, send: Send
) -> None:
    query = _query(scope)
    try:
        answers = await ask_all(client, bases, scope, "/v2/_catalog", params=query)
    except RegistryError as exc:
        await error_response(exc)(scope, receive, send)
        return
    refused = next((a for a in answers if a.response.status_code != 200), None)
    if refused is not None:
        await passed_on(refused.response)(scope, receive, send)
        return
    n = int(query["n"]) if query.get("n") else None  # each member has checked it already
    try:
        names, more = merge(answers, n)
    except RegistryError as exc:
        await error_response(exc)(scope, receive, send)
        return
    headers = {"Link": next_link("/v2/_catalog", n, names[-1])} if more and n and names else {}
    body = json.dumps({"repositories": names}, separators=(",", ":")).encode()
    await Response(body, media_type="application/json", headers=headers)(scope, receive, send)
