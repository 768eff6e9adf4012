"""Running outside client tools; a missing one skips its check with the install hint."""

from __future__ import annotations

import shutil
import subprocess
from urllib.parse import urlsplit

import pytest

from ocireg.conformance.checks import ConformanceFailure
from ocireg.conformance.settings import Settings


def binary(name: str, hint: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not on PATH ({hint})")
    assert path is not None
    return path


def run(*args: str, section: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise ConformanceFailure(
            f"{section}: `{' '.join(args)}` exited {done.returncode}\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def host(settings: Settings) -> str:
    return urlsplit(settings.root_url).netloc


def plain_http(settings: Settings) -> bool:
    return urlsplit(settings.root_url).scheme == "http"
