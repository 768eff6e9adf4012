"""Fixtures and workflow selection for the conformance suite."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from ocireg.conformance.client import WATCH_KEY, SchemaWatch, make_client
from ocireg.conformance.ops import Registry
from ocireg.conformance.settings import SETTINGS_KEY, WORKFLOWS, Settings


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "workflow(name): the conformance workflow a check belongs to"
    )
    settings = Settings.from_env()
    config.stash[SETTINGS_KEY] = settings
    config.stash[WATCH_KEY] = SchemaWatch(settings.schema)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    settings = config.stash[SETTINGS_KEY]
    for item in items:
        marker = item.get_closest_marker("workflow")
        if marker is None:
            continue
        name = marker.args[0]
        if not settings.root_url:
            item.add_marker(pytest.mark.skip(reason="OCI_ROOT_URL is not set"))
        elif name not in settings.workflows:
            item.add_marker(pytest.mark.skip(reason=f"{WORKFLOWS[name]} is not set"))


@pytest.fixture(scope="session")
def settings(pytestconfig: pytest.Config) -> Settings:
    return pytestconfig.stash[SETTINGS_KEY]


@pytest.fixture(scope="session")
def client(settings: Settings, pytestconfig: pytest.Config) -> Iterator[httpx.Client]:
    with make_client(settings, pytestconfig.stash[WATCH_KEY]) as http:
        yield http


@pytest.fixture(scope="session")
def registry(client: httpx.Client) -> Registry:
    return Registry(client)


@pytest.fixture(scope="session")
def repo(settings: Settings) -> str:
    return settings.namespace


@pytest.fixture(scope="session")
def other_repo(settings: Settings) -> str:
    return settings.crossmount_namespace
