"""Retention policies applied by GC: which tags stay, untagged and referrers, dry runs."""

from __future__ import annotations

import asyncio
import logging

import pytest

from ocireg.meta.db import SQLiteMetaDB
from ocireg.meta.sync import sync_all
from ocireg.registry.gc import GarbageCollector
from ocireg.registry.retention import policy_for
from ocireg.retentionconfig import RetentionConfig
from tests.registry.world import World

DAY = 24 * 3600.0


def retention(**fields: object) -> RetentionConfig:
    return RetentionConfig.model_validate(fields)


def world_with_tags(tags: list[str]) -> tuple[World, SQLiteMetaDB]:
    """Tags pushed one hour apart, in order (the last is the newest)."""
    world, db = World(), SQLiteMetaDB(":memory:")
    for tag in tags:
        world.image("app/web", f"layer {tag}".encode(), tag)
        world.later(3600)
    sync_all(world.registry, db)  # push times from storage: an hour apart
    return world, db


def collect(world: World, db: SQLiteMetaDB, config: RetentionConfig) -> list[str]:
    gc = GarbageCollector(world.registry, DAY, clock=world.now, retention=config, meta=db)
    return asyncio.run(gc.collect("app/web")).tags


def tags_left(world: World) -> list[str]:
    index = world.registry.index("app/web")
    return sorted(index.tags) if index else []


def test_globs_pick_the_first_matching_policy() -> None:
    config = retention(policies=[
        {"repositories": ["prod/**"], "deleteUntagged": False},
        {"repositories": ["*"], "deleteReferrers": True},
        {"repositories": ["**"]},
    ])  # fmt: skip
    assert policy_for(config, "prod/a/b") is config.policies[0]
    assert policy_for(config, "solo") is config.policies[1]
    assert policy_for(config, "team/app") is config.policies[2]
    assert policy_for(retention(policies=[{"repositories": ["prod/*"]}]), "prod/a/b") is None


def test_most_recently_pushed_per_pattern_and_unmatched_tags_go() -> None:
    world, db = world_with_tags(["v1", "v2", "v3", "v4", "dev-1", "latest"])
    config = retention(policies=[{
        "repositories": ["app/**"],
        "keepTags": [
            {"patterns": ["^v"], "mostRecentlyPushedCount": 2},
            {"patterns": ["^latest$"]},
        ],
    }])  # fmt: skip
    removed = collect(world, db, config)
    assert sorted(removed) == ["dev-1", "v1", "v2"]
    assert tags_left(world) == ["latest", "v3", "v4"]


def test_pulled_within_keeps_an_old_tag(caplog: pytest.LogCaptureFixture) -> None:
    world, db = world_with_tags(["old", "new"])
    digest = world.registry.resolve("app/web", "old").digest
    db.add_pulls({("app/web", digest): (1, world.now())})
    config = retention(policies=[{
        "repositories": ["**"],
        "keepTags": [{"mostRecentlyPushedCount": 1, "pulledWithin": "24h"}],
    }])  # fmt: skip
    with caplog.at_level(logging.INFO, logger="ocireg.gc"):
        assert collect(world, db, config) == []
    assert tags_left(world) == ["new", "old"]
    reasons = [r.getMessage() for r in caplog.records if '"retention"' in r.getMessage()]
    assert any('"tag":"old"' in line and "pulled within" in line for line in reasons)


def test_dry_run_logs_and_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    world, db = world_with_tags(["a", "b"])
    config = retention(dryRun=True, policies=[{"repositories": ["**"], "keepTags": []}])
    with caplog.at_level(logging.INFO, logger="ocireg.gc"):
        assert collect(world, db, config) == []
    assert tags_left(world) == ["a", "b"]
    lines = [r.getMessage() for r in caplog.records if '"retention"' in r.getMessage()]
    assert len(lines) == 2 and all('"decision":"delete"' in line for line in lines)
    assert all('"dryRun":true' in line for line in lines)


def test_delete_untagged_false_and_keep_untagged() -> None:
    world, db = world_with_tags(["a", "b"])
    asyncio.run(world.registry.delete_manifest("app/web", "a"))
    asyncio.run(world.registry.delete_manifest("app/web", "b"))
    sync_all(world.registry, db)
    world.later(2 * DAY)
    keep_all = retention(policies=[{"repositories": ["**"], "deleteUntagged": False}])
    gc = GarbageCollector(world.registry, DAY, clock=world.now, retention=keep_all, meta=db)
    assert asyncio.run(gc.collect("app/web")).manifests == []
    newest = retention(policies=[{
        "repositories": ["**"], "keepUntagged": {"mostRecentlyPushedCount": 1},
    }])  # fmt: skip
    gc = GarbageCollector(world.registry, DAY, clock=world.now, retention=newest, meta=db)
    assert len(asyncio.run(gc.collect("app/web")).manifests) == 1
    index = world.registry.index("app/web")
    assert index is not None and len(index.by_digest) == 1


def test_a_tag_without_statistics_is_kept() -> None:
    world, db = World(), SQLiteMetaDB(":memory:")
    world.image("app/web", b"layer", "unknown")  # never synchronised into the meta DB
    config = retention(policies=[{"repositories": ["**"], "keepTags": []}])
    assert collect(world, db, config) == []
    assert tags_left(world) == ["unknown"]
