"""Assertions that name the section of the distribution spec they enforce."""

from __future__ import annotations

import httpx

SPEC_URL = "https://github.com/opencontainers/distribution-spec/blob/v1.1.1/spec.md"
MAIN_URL = "https://github.com/opencontainers/distribution-spec/blob/main/spec.md"


class ConformanceFailure(AssertionError):
    """A departure from the spec; its message starts with the section it breaks."""


def section_ref(section: str) -> str:
    anchor = section.split(" (", 1)[0].lower().replace(" ", "-")
    base = MAIN_URL if section.endswith("[main]") else SPEC_URL
    return f"{base}#{anchor.removesuffix('-[main]')}"


def expect(condition: bool, section: str, message: str) -> None:
    if not condition:
        raise ConformanceFailure(f"spec §{section}: {message}\n  see {section_ref(section)}")


def describe(response: httpx.Response) -> str:
    request = response.request
    body = response.content[:300].decode("utf-8", "replace") if response.content else ""
    excerpt = f" {body!r}" if body else ""
    return (
        f"{request.method} {request.url.raw_path.decode()} answered {response.status_code}{excerpt}"
    )


def expect_status(response: httpx.Response, allowed: int | tuple[int, ...], section: str) -> None:
    codes = (allowed,) if isinstance(allowed, int) else allowed
    wanted = " or ".join(str(code) for code in codes)
    expect(response.status_code in codes, section, f"{describe(response)}; expected {wanted}")


def expect_header(response: httpx.Response, name: str, section: str) -> str:
    value = response.headers.get(name)
    expect(value is not None, section, f"{describe(response)} without the {name} header")
    assert value is not None
    return value


def error_codes(response: httpx.Response) -> list[str]:
    """The OCI error codes of a JSON error body; [] when the body is not one."""
    try:
        document = response.json()
    except ValueError:
        return []
    errors = document.get("errors") if isinstance(document, dict) else None
    if not isinstance(errors, list):
        return []
    return [str(item.get("code")) for item in errors if isinstance(item, dict)]


def expect_error_code(response: httpx.Response, codes: tuple[str, ...], section: str) -> None:
    """A JSON error body, if there is one, must carry one of ``codes`` (spec §Error Codes)."""
    if "json" not in response.headers.get("Content-Type", "") or not response.content:
        return
    found = error_codes(response)
    expect(
        any(code in codes for code in found),
        section,
        f"{describe(response)}; its error body should carry {' or '.join(codes)}",
    )
