"""``ocireg conformance --extension FRAGMENT.yaml --url URL``: check one extension's API.

The mirror image of the registry suite, for an extension author: given the extension's OpenAPI
fragment (and its definition document, by default the ``.md`` beside it) and a registry that
serves it, check

* **names**: every path is ``/v2/_<ns>/<component>/<module>`` or
  ``/v2/{name}/_<ns>/<component>/<module>`` (further segments allowed), with the extensions
  README's segment rule, one namespace, not ``_oci`` or ``_catalog``;
* **definition**: the document follows the OCI extension format (``_oci.md``'s shape): a title
  naming the namespace, Summary, Reference Explanation with a Component and Module heading for
  each one the fragment declares, every endpoint named, and an Error Codes table;
* **discovery**: ``GET /v2/_oci/ext/discover`` lists the namespace with a name, description and
  url; for repository-level endpoints, ``GET /v2/<repo>/_oci/ext/discover`` does too (an image
  is pushed to ``--namespace`` for that and deleted afterwards);
* **operations**: schemathesis sends positive and negative inputs to every declared operation;
  every answer must be no 5xx, a declared status, content type and body;
* **errors**: every 4xx or 5xx with a body is an OCI error body
  (``{"errors": [{"code": "UPPER_CASE", "message": "..."}]}``);
* **undeclared**: paths in the namespace that the fragment does not declare answer 404.

It talks HTTP only, so it runs against any registry, not only ocireg.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

SEGMENT = r"[a-z0-9]+(?:[._-][a-z0-9]+)*"
_PATH_RE = re.compile(
    rf"^/v2(?P<repo>/\{{[^/}}]+\}})?/_(?P<ns>{SEGMENT})/(?P<component>{SEGMENT})"
    rf"/(?P<module>{SEGMENT})(?P<rest>/.*)?$"
)
RESERVED = ("oci", "catalog")
_CODE_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# The image pushed for repository-level checks carries the usual OCI annotations, so that a
# registry requiring some of them (zot's lint) takes it.
_ANNOTATIONS = {
    f"org.opencontainers.image.{key}": value
    for key, value in {
        "title": "extension conformance",
        "description": "pushed by ocireg conformance --extension; deleted when it ends",
        "source": "https://github.com/opencontainers/distribution-spec",
        "created": "2026-01-01T00:00:00Z",
        "licenses": "Apache-2.0",
        "vendor": "ocireg",
        "version": "1",
    }.items()
}


@dataclass
class Finding:
    check: str
    passed: bool
    detail: str


@dataclass
class ExtensionReport:
    namespace: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if not f.passed]

    def add(self, check: str, problems: list[str], passed_detail: str) -> None:
        if problems:
            self.findings += [Finding(check, False, problem) for problem in problems]
        else:
            self.findings.append(Finding(check, True, passed_detail))

    def render(self) -> str:
        lines = [f"{'PASS' if f.passed else 'FAIL'} {f.check}: {f.detail}" for f in self.findings]
        verdict = "conforms" if not self.failed else f"{len(self.failed)} problem(s)"
        lines.append(f"extension _{self.namespace}: {verdict}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Endpoint:
    path: str
    repository_level: bool
    namespace: str
    component: str
    module: str


@dataclass(frozen=True)
class Target:
    url: str
    username: str | None = None
    password: str | None = None
    verify: bool = True
    namespace: str = "oci-conformance/extension"  # where an image may be pushed
    examples: int = 25  # schemathesis examples per operation

    def client(self) -> httpx.Client:
        auth = (self.username, self.password or "") if self.username else None
        return httpx.Client(base_url=self.url, auth=auth, verify=self.verify, timeout=60)


# -- names --------------------------------------------------------------------------------------
def endpoints(document: dict[str, Any]) -> tuple[list[Endpoint], list[str]]:
    """The fragment's paths as endpoints, and a problem per path that breaks the naming rules."""
    found, problems = [], []
    for path in document.get("paths") or {}:
        match = _PATH_RE.match(str(path))
        if match is None:
            problems.append(
                f"{path}: not /v2/_<ns>/<component>/<module> or /v2/{{name}}/_<ns>/<component>"
                f"/<module> with each part matching {SEGMENT}"
            )
            continue
        found.append(Endpoint(str(path), match["repo"] is not None, match["ns"],
                              match["component"], match["module"]))  # fmt: skip
    namespaces = sorted({e.namespace for e in found})
    if len(namespaces) > 1:
        problems.append(f"more than one namespace: {', '.join('_' + n for n in namespaces)}")
    problems += [f"_{n} is reserved by the OCI" for n in namespaces if n in RESERVED]
    if not found and not problems:
        problems.append("the fragment declares no paths")
    return found, problems


# -- the definition document --------------------------------------------------------------------
def _sections(text: str) -> dict[str, str]:
    """Level-2 sections by their title, with their text."""
    sections: dict[str, str] = {}
    title = None
    for line in text.splitlines():
        if line.startswith("## "):
            title = line[3:].strip()
            sections[title] = ""
        elif title is not None:
            sections[title] += line + "\n"
    return sections


def _display(path: str) -> str:
    return re.sub(r"\{([^}]+)\}", r"<\1>", path)


def definition_problems(text: str, found: list[Endpoint]) -> list[str]:
    problems = []
    title = next((line for line in text.splitlines() if line.startswith("# ")), "")
    namespace = f"_{found[0].namespace}" if found else ""
    if namespace not in title:
        problems.append(f"the first heading does not name {namespace}: {title!r}")
    sections = _sections(text)
    for required in ("Summary", "Reference Explanation", "Error Codes"):
        if not sections.get(required, "").strip():
            problems.append(f"no '## {required}' section, or it is empty")
    reference = sections.get("Reference Explanation", "")
    for component in sorted({e.component for e in found}):
        if f"### Component: `{component}`" not in reference:
            problems.append(f"Reference Explanation has no '### Component: `{component}`'")
    for module in sorted({e.module for e in found}):
        if f"#### Module: `{module}`" not in reference:
            problems.append(f"Reference Explanation has no '#### Module: `{module}`'")
    for endpoint in found:
        if _display(endpoint.path) not in text and endpoint.path not in text:
            problems.append(f"the endpoint {_display(endpoint.path)} is not named in it")
    codes = sections.get("Error Codes", "")
    if not re.search(r"^\|\s*Code\s*\|\s*Message\s*\|\s*Description\s*\|", codes, re.M):
        problems.append("Error Codes has no '| Code | Message | Description |' table")
    return problems


# -- the registry -------------------------------------------------------------------------------
def error_body_problem(status: int, headers: httpx.Headers | Any, content: bytes) -> str | None:
    """Why an error answer is not an OCI error body (None: it is, or it is not an error)."""
    if status < 400 or not content:
        return None
    if not str(headers.get("content-type", "")).startswith("application/json"):
        return f"{status} with a body that is not JSON ({headers.get('content-type')})"
    try:
        body = json.loads(content)
    except ValueError:
        return f"{status} with a body that does not parse as JSON"
    errors = body.get("errors") if isinstance(body, dict) else None
    if not isinstance(errors, list) or not errors:
        return f"{status} without a non-empty `errors` list: {content[:200]!r}"
    for entry in errors:
        if not isinstance(entry, dict) or not _CODE_RE.match(str(entry.get("code", ""))):
            return f"{status} with an error entry without an UPPER_CASE code: {entry!r}"
        if not isinstance(entry.get("message", ""), str):
            return f"{status} with an error message that is not a string: {entry!r}"
    return None


def _listed(client: httpx.Client, path: str, namespace: str) -> list[str]:
    answer = client.get(path)
    where = f"GET {path}"
    if answer.status_code != 200:
        return [f"{where} answered {answer.status_code}"]
    try:
        entries = answer.json().get("extensions") or []
    except (ValueError, AttributeError):
        return [f"{where}: not a JSON object with an `extensions` list"]
    entry = next((e for e in entries if isinstance(e, dict) and e.get("name") == namespace), None)
    if entry is None:
        return [f"{where} does not list {namespace}"]
    missing = [key for key in ("name", "description", "url") if not entry.get(key)]
    return [f"{where}: the {namespace} entry lacks {', '.join(missing)}"] if missing else []


def _blob(client: httpx.Client, repo: str, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    answer = client.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data,
                         headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    if answer.status_code == 202:  # no monolithic POST: finish the session with a PUT
        location = answer.headers["location"]
        answer = client.put(location, params={"digest": digest}, content=data,
                            headers={"Content-Type": "application/octet-stream"})  # fmt: skip
    answer.raise_for_status()
    return {"digest": digest, "size": len(data)}


@contextmanager
def pushed_repository(target: Target, client: httpx.Client) -> Iterator[str]:
    """A repository with one image (for repository-level checks), deleted afterwards."""
    repo = target.namespace
    config = {"mediaType": "application/vnd.oci.image.config.v1+json", **_blob(client, repo, b"{}")}
    manifest = json.dumps({"schemaVersion": 2, "mediaType": _MANIFEST, "config": config,
                           "layers": [], "annotations": _ANNOTATIONS}).encode()  # fmt: skip
    answer = client.put(f"/v2/{repo}/manifests/extension-conformance", content=manifest,
                        headers={"Content-Type": _MANIFEST})  # fmt: skip
    answer.raise_for_status()
    try:
        yield repo
    finally:
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        client.delete(f"/v2/{repo}/manifests/{digest}")


def undeclared_problems(client: httpx.Client, found: list[Endpoint], repo: str | None) -> list[str]:
    """Paths in the namespace the fragment does not declare must answer 404."""
    declared = {e.path for e in found}
    probes = set()
    for e in found:
        base = (
            f"/v2/{repo}"
            if e.repository_level and repo
            else "/v2"
            if not e.repository_level
            else None
        )
        if base is None:
            continue
        probes.add(f"{base}/_{e.namespace}/{e.component}/undeclared-module-0")
        probes.add(f"{base}/_{e.namespace}/undeclared-component-0/{e.module}")
    problems = []
    for probe in sorted(probes - declared):
        status = client.get(probe).status_code
        if status != 404:
            problems.append(f"GET {probe} (not declared) answered {status}, not 404")
    return problems


def operation_problems(document: dict[str, Any], target: Target) -> list[str]:
    """schemathesis on every operation of the fragment: the first failure of each."""
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    def oci_errors(_ctx: Any, response: Any, case: Any) -> bool | None:
        headers = {k: v[0] for k, v in response.headers.items()}
        problem = error_body_problem(response.status_code, headers, response.content)
        if problem is not None:
            raise AssertionError(f"{case.method} {case.formatted_path}: {problem}")
        return None

    checks: list[Callable[..., Any]] = [not_a_server_error, status_code_conformance,
                                        content_type_conformance, response_schema_conformance,
                                        oci_errors]  # fmt: skip
    config = schemathesis.Config.from_dict({"seed": 20_251_205, "generation": {
        "mode": "all", "max-examples": target.examples, "deterministic": True,
        "database": "none"}})  # fmt: skip
    schema = schemathesis.openapi.from_dict(document, config=config)
    problems = []
    for result in schema.get_all_operations():
        operation = result.ok()
        failure = _first_failure(operation, checks, target)
        if failure is not None:
            problems.append(f"{operation.method.upper()} {operation.path}: {failure}")
    return problems


def _first_failure(operation: Any, checks: list[Callable[..., Any]], target: Target) -> str | None:
    import hypothesis

    auth = (target.username, target.password or "") if target.username else None
    failures: list[str] = []

    @hypothesis.settings(max_examples=target.examples, deadline=None, database=None,
                         derandomize=True, phases=[hypothesis.Phase.generate],
                         suppress_health_check=list(hypothesis.HealthCheck))  # fmt: skip
    @hypothesis.given(case=operation.as_strategy())
    def run(case: Any) -> None:
        if failures:
            return  # one failure per operation says enough
        try:
            case.call_and_validate(checks=checks, base_url=target.url, auth=auth,
                                   verify=target.verify, timeout=30)  # fmt: skip
        except (Exception, BaseExceptionGroup) as exc:  # schemathesis' FailureGroup, asserts
            failures.append(_first_line(exc))

    run()
    return failures[0] if failures else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return " / ".join(lines[:3])[:400]


# -- the whole run ------------------------------------------------------------------------------
def check_extension(
    fragment: Path, target: Target, definition: Path | None = None
) -> ExtensionReport:
    document = yaml.safe_load(fragment.read_text(encoding="utf-8"))
    if not isinstance(document, dict):
        report = ExtensionReport("?")
        report.add("names", [f"{fragment}: not an OpenAPI document"], "")
        return report
    found, name_problems = endpoints(document)
    report = ExtensionReport(found[0].namespace if found else "?")
    report.add("names", name_problems, f"{len(found)} path(s) in _{report.namespace}")
    definition = definition or fragment.with_suffix(".md")
    if definition.is_file():
        text = definition.read_text(encoding="utf-8")
        report.add("definition", definition_problems(text, found), f"{definition.name} follows "
                   "the OCI extension format")  # fmt: skip
    else:
        report.add("definition", [f"{definition}: no definition document"], "")
    if not found:
        return report
    namespace = f"_{report.namespace}"
    with target.client() as client:
        listed = _listed(client, "/v2/_oci/ext/discover", namespace)
        repo_level = any(e.repository_level for e in found)
        try:
            with pushed_repository(target, client) if repo_level else _nothing() as repo:
                if repo is not None:
                    listed += _listed(client, f"/v2/{repo}/_oci/ext/discover", namespace)
                report.add("discovery", listed, f"{namespace} listed by _oci discovery")
                report.add("undeclared", undeclared_problems(client, found, repo),
                           "undeclared paths in the namespace answer 404")  # fmt: skip
        except httpx.HTTPStatusError as refused:
            answer = refused.response
            refusal = (f"could not push an image to {target.namespace} for the repository-level "
                       f"checks: {answer.status_code} {answer.text[:200]} (--namespace names "
                       "another repository)")  # fmt: skip
            report.add("discovery", [*listed, refusal], "")
    report.add("operations", operation_problems(document, target),
               "every operation answers as declared, errors included")  # fmt: skip
    return report


@contextmanager
def _nothing() -> Iterator[None]:
    yield None
