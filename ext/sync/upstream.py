"""A client for one upstream registry: its mirror URLs in order, Basic and token auth, TLS from
``certDir``, and retries with exponential back-off on 429, 5xx and connection failures.

Auth follows the distribution spec's token flow: a request is sent as is (or with a token
already got for its scope); a ``401`` with ``WWW-Authenticate: Bearer realm=...,service=...,
scope=...`` gets a token from the realm (with the credentials, if any, as Basic auth) and the
request is sent again; a ``Basic`` challenge is answered with the credentials. Credentials come
from the ``credentialsFile`` and are looked up at each challenge, so a changed file applies to
the next request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ocireg.digests import digest_bytes
from ocireg.logs import event
from ocireg.registry import mediatypes as mt

from .credentials import CredentialsFile
from .limits import HostLimits, LimitedTransport
from .settings import UpstreamRegistry
from .transport import ThreadedTransport

log = logging.getLogger("ocireg.sync")

MANIFEST_ACCEPT = ", ".join([mt.OCI_INDEX, mt.OCI_MANIFEST, mt.DOCKER_LIST, mt.DOCKER_MANIFEST])
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})
PAGE = 1000
# a stall, not a slow answer: syncTimeout bounds each attempt as a whole
_CONNECT_TIMEOUT, _READ_TIMEOUT = 30.0, 60.0


class UpstreamError(Exception):
    """The upstream could not answer (after retries), or answered what we cannot use."""


class NotUpstream(UpstreamError):
    """The upstream answered that it does not have it (404): asking again will not help."""


@dataclass(frozen=True)
class Fetched:
    """A manifest as the upstream serves it."""

    data: bytes
    media_type: str
    digest: str


def tls_context(verify: bool, cert_dir: str | None) -> ssl.SSLContext | bool:
    """zot's (and Docker's) certDir: every ``*.crt`` is a CA, ``client.cert`` with
    ``client.key`` is the client certificate (presented even when ``tlsVerify`` is off)."""
    if cert_dir is None:
        return verify
    directory = Path(cert_dir)
    context = ssl.create_default_context()
    if verify:
        for ca in sorted(directory.glob("*.crt")):
            context.load_verify_locations(cafile=str(ca))
    else:  # the client certificate is still presented
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    client = client_certificate(cert_dir)
    if client is not None:
        context.load_cert_chain(*client)
    return context


def client_certificate(cert_dir: str | None) -> tuple[str, str] | None:
    """certDir's ``client.cert`` and ``client.key``, when both are there."""
    if cert_dir is None:
        return None
    cert, key = Path(cert_dir) / "client.cert", Path(cert_dir) / "client.key"
    return (str(cert), str(key)) if cert.exists() and key.exists() else None


class Upstream:
    def __init__(
        self,
        settings: UpstreamRegistry,
        credentials: CredentialsFile,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.urls = settings.urls
        inner = transport or ThreadedTransport(
            tls_context(settings.tlsVerify, settings.certDir), _CONNECT_TIMEOUT, _READ_TIMEOUT
        )
        limits = HostLimits(settings.reqConcurrent, settings.reqPerSec)
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(_CONNECT_TIMEOUT, read=_READ_TIMEOUT),
            follow_redirects=True,
            transport=LimitedTransport(inner, limits),
        )
        self._tokens: dict[tuple[str, str], str] = {}  # (url, scope) -> bearer token
        self._basic: set[str] = set()  # URLs that challenged with Basic
        self._no_referrers_api = False  # learnt from its first answer

    async def close(self) -> None:
        await self._client.aclose()

    # -- requests -------------------------------------------------------------------------
    def _expect(self, answer: httpx.Response, status: int, path: str) -> None:
        if answer.status_code == status:
            return
        why = self._unauthorized(str(answer.url)) if answer.status_code == 401 else ""
        raise UpstreamError(f"{path}: answered {answer.status_code}{why}")

    def _unauthorized(self, url: str) -> str:
        """What the mirror sent that the upstream refused (a 401 says only that it did)."""
        host = urlsplit(url).netloc
        sent = "credentials" if self.credentials.for_host(host) else "no credentials"
        has_client = client_certificate(self.settings.certDir) is not None
        certificate = "a client certificate" if has_client else "no client certificate"
        return f" (unauthorized: this mirror sent {sent} for {host} and {certificate})"

    def _auth(self, url: str) -> httpx.BasicAuth | None:
        found = self.credentials.for_host(urlsplit(url).netloc)
        return httpx.BasicAuth(found.username, found.password) if found else None

    async def _send_once(
        self, url: str, path: str, scope: str, headers: dict[str, str], method: str
    ) -> httpx.Response:
        """One request with auth, streamed (the caller reads or closes it)."""
        token = self._tokens.get((url, scope))
        sent = {**headers, **({"Authorization": f"Bearer {token}"} if token else {})}
        request = self._client.build_request(method, url + path, headers=sent)
        basic = self._auth(url) if url in self._basic else None
        if basic is not None:  # it asked for Basic before: no anonymous round trip first
            return await self._client.send(request, stream=True, auth=basic)
        response = await self._client.send(request, stream=True)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("www-authenticate", "")
        basic = self._auth(url)
        bearer = challenge.lower().startswith("bearer")
        if not bearer and basic is None:
            return response  # nothing to answer the challenge with: the caller sees the 401
        await response.aclose()
        if bearer:
            self._tokens[(url, scope)] = await self._token(url, challenge, scope, basic)
            sent["Authorization"] = f"Bearer {self._tokens[(url, scope)]}"
            request = self._client.build_request(method, url + path, headers=sent)
            return await self._client.send(request, stream=True)
        self._basic.add(url)
        request = self._client.build_request(method, url + path, headers=headers)
        return await self._client.send(request, stream=True, auth=basic)

    async def _token(
        self, url: str, challenge: str, scope: str, basic: httpx.BasicAuth | None
    ) -> str:
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", None)
        if realm is None:
            raise UpstreamError(f"{url}: Bearer challenge without a realm")
        query = {"service": params.get("service", ""), "scope": params.get("scope") or scope}
        auth = basic if basic is not None else httpx.USE_CLIENT_DEFAULT
        answer = await self._client.get(realm, params=query, auth=auth)
        if answer.status_code != 200:
            raise UpstreamError(f"{url}: token request answered {answer.status_code}")
        body = answer.json()
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str):
            raise UpstreamError(f"{url}: token response without a token")
        return token

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        delay: float = self.settings.retryDelay * (2**attempt)
        if self.settings.maxRetryDelay is not None:
            delay = min(delay, self.settings.maxRetryDelay)
        after = response.headers.get("retry-after", "") if response is not None else ""
        if after.isdigit():
            delay = max(delay, min(float(after), self.settings.maxRetryDelay or float(after)))
        return delay

    async def _send_retrying(
        self,
        url: str,
        path: str,
        scope: str,
        headers: dict[str, str],
        method: str,
        deadline: asyncio.Timeout,
    ) -> httpx.Response:
        attempt = 0
        while True:
            response: httpx.Response | None = None
            try:
                # syncTimeout, as Go's http.Client.Timeout in zot: each attempt, from its first
                # byte sent to the last one of its body read, the retry's back-off excluded
                deadline.reschedule(asyncio.get_running_loop().time() + self.settings.syncTimeout)
                response = await self._send_once(url, path, scope, headers, method)
                if response.status_code not in _RETRIED_STATUS:
                    return response
                failure = f"answered {response.status_code}"
                if attempt >= self.settings.maxRetries:
                    return response
                await response.aclose()
            except httpx.TransportError as error:
                failure = f"{type(error).__name__}: {error}"
                if attempt >= self.settings.maxRetries:
                    raise UpstreamError(f"{url}: {failure}") from error
            deadline.reschedule(None)
            delay = self._delay(attempt, response)
            event(
                log,
                logging.WARNING,
                "sync upstream retry",
                upstream=url,
                path=path,
                failure=failure,
                attempt=attempt + 1,
                delay=delay,
            )
            await asyncio.sleep(delay)
            attempt += 1

    @asynccontextmanager
    async def request(
        self, path: str, scope: str, headers: dict[str, str] | None = None, method: str = "GET"
    ) -> AsyncIterator[httpx.Response]:
        """The first mirror URL's answer that is neither a failure nor a 404 (else the last
        one's), streamed; UpstreamError when none could answer at all."""
        errors: list[str] = []
        chosen: httpx.Response | None = None
        try:
            async with asyncio.timeout(None) as deadline:
                for url in self.urls:
                    if chosen is not None:  # kept, read, as the answer if no other URL has one
                        await chosen.aread()
                        await chosen.aclose()  # its request slot is free for the next
                    try:
                        response = await self._send_retrying(
                            url, path, scope, headers or {}, method, deadline
                        )
                    except UpstreamError as error:
                        errors.append(str(error))
                        continue
                    chosen = response
                    if response.status_code != 404 and response.status_code < 500:
                        break
                if chosen is None:
                    raise UpstreamError("; ".join(errors))
                try:
                    yield chosen
                except httpx.HTTPError as error:  # the body broke off, or was not what it said
                    raise UpstreamError(f"{chosen.url}: {type(error).__name__}: {error}") from error
                finally:
                    await chosen.aclose()
        except TimeoutError:
            if not deadline.expired():  # the caller's own, not syncTimeout
                raise
            where = chosen.url if chosen is not None else self.urls[-1] + path
            raise UpstreamError(
                f"{where}: no whole answer within syncTimeout ({self.settings.syncTimeout:g} s)"
            ) from None

    # -- the distribution API -------------------------------------------------------------
    async def manifest(self, repo: str, reference: str) -> Fetched | None:
        """The manifest, None when the upstream has none; UpstreamError otherwise."""
        path = f"/v2/{repo}/manifests/{reference}"
        async with self.request(path, _pull(repo), {"Accept": MANIFEST_ACCEPT}) as answer:
            if answer.status_code == 404:
                return None
            self._expect(answer, 200, path)
            data = await answer.aread()
        media_type = answer.headers.get("content-type", "").split(";")[0].strip()
        digest = str(digest_bytes(data))
        if reference.startswith("sha256:") and digest != reference:
            raise UpstreamError(f"{path}: content has digest {digest}")
        return Fetched(data, media_type, digest)

    @asynccontextmanager
    async def blob(self, repo: str, digest: str, offset: int = 0) -> AsyncIterator[httpx.Response]:
        """The blob's answer from ``offset`` on (206 or 200: the caller skips what it has; 416
        to a Range: the caller reads its ``Content-Range``)."""
        path = f"/v2/{repo}/blobs/{digest}"
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        answered = (200, 206, 416) if offset else (200, 206)
        async with self.request(path, _pull(repo), headers) as answer:
            if answer.status_code == 404:
                raise NotUpstream(f"{path}: not found")
            if answer.status_code not in answered:
                raise UpstreamError(f"{path}: answered {answer.status_code}")
            yield answer

    async def catalog(self) -> list[str]:
        return await self._pages(f"/v2/_catalog?n={PAGE}", "registry:catalog:*", "repositories")

    async def tags(self, repo: str) -> list[str] | None:
        """The repository's tags, None when the upstream does not know it."""
        try:
            return await self._pages(f"/v2/{repo}/tags/list?n={PAGE}", _pull(repo), "tags")
        except NotUpstream:
            return None

    async def referrers(self, repo: str, digest: str) -> list[dict[str, Any]] | None:
        """The referrers' descriptors, None when the upstream has no referrers API."""
        if self._no_referrers_api:
            return None
        path = f"/v2/{repo}/referrers/{digest}"
        async with self.request(path, _pull(repo)) as answer:
            if answer.status_code == 404 and "json" not in answer.headers.get("content-type", ""):
                self._no_referrers_api = True  # the API answers an empty list, never a bare 404
            if answer.status_code != 200:
                return None
            body = json.loads(await answer.aread())
        if not isinstance(body, dict) or not isinstance(body.get("manifests"), list):
            return None
        return [d for d in body["manifests"] if isinstance(d, dict)]

    async def _pages(self, path: str, scope: str, key: str) -> list[str]:
        found: list[str] = []
        next_path: str | None = path
        while next_path is not None:
            async with self.request(next_path, scope) as answer:
                if answer.status_code == 404:
                    raise NotUpstream(next_path)
                self._expect(answer, 200, next_path)
                body = json.loads(await answer.aread())
                link = answer.headers.get("link")
            found += [str(item) for item in (body.get(key) or [])]
            next_path = _next_page(link)
        return found


def _pull(repo: str) -> str:
    return f"repository:{repo}:pull"


def _next_page(link: str | None) -> str | None:
    match = re.match(r"\s*<([^>]+)>", link or "")
    if match is None:
        return None
    target = match[1]
    return (
        target
        if target.startswith("/")
        else urlsplit(target)._replace(scheme="", netloc="").geturl()
    )
