"""The configuration: zot's file format (JSON or YAML), one typed model, strict about keys.

Keys are zot's spelling and are matched case-insensitively on load, as zot (viper) does. Unknown
keys are rejected with their path. ``extensions`` is validated section by section by the
extension each section names (see :mod:`ocireg.extensions`); ``http.auth``,
``http.accessControl`` and ``http.ratelimit`` by :mod:`ocireg.auth` and :mod:`ocireg.ratelimit`.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from ocireg.configcheck import ConfigError, normalise_keys, validation_problems
from ocireg.defaults import empty_list
from ocireg.durations import Duration
from ocireg.gcwindow import TimeWindow
from ocireg.ratelimit import RateLimitConfig
from ocireg.sections import SectionsJsonSchema, section

# Sections most files leave out: their models are imported when a file has them.
if TYPE_CHECKING:
    from ocireg.auth.policyconfig import AccessControlConfig
    from ocireg.auth.settings import AuthConfig
    from ocireg.cluster.settings import ClusterConfig
    from ocireg.retentionconfig import RetentionConfig
    from ocireg.storage.s3config import S3DriverConfig
else:
    AccessControlConfig = section("ocireg.auth.policyconfig:AccessControlConfig")
    AuthConfig = section("ocireg.auth.settings:AuthConfig")
    ClusterConfig = section("ocireg.cluster.settings:ClusterConfig")
    RetentionConfig = section("ocireg.retentionconfig:RetentionConfig")
    S3DriverConfig = section("ocireg.storage.s3config:S3DriverConfig")

LogLevel = Literal["debug", "info", "warn", "warning", "error", "fatal", "panic"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


# zot's storage drivers: s3 is served; the others are refused, since serving such a file would
# put the data somewhere other than the file says.
UNBUILT_STORAGE_DRIVERS = frozenset({"gcs", "azure"})


def _check_storage_driver(driver: Any) -> Any:
    if driver is None or not isinstance(driver, dict):
        return driver
    name = str(driver.get("name", "")).lower()
    if name in UNBUILT_STORAGE_DRIVERS:
        raise ValueError(
            f"the {name} storage driver is not implemented: ocireg would store everything on "
            "local disk under rootDirectory instead, so it refuses this file; use s3, or "
            "remove storageDriver to serve from local disk"
        )
    if not name:
        raise ValueError("needs a name (zot knows s3, gcs and azure)")
    if name != "s3":
        raise ValueError(f"unknown storage driver {name!r}: zot knows s3, gcs and azure")
    return {**driver, "name": "s3"}


class PostgresCacheConfig(_Section):
    """ocireg's ``cacheDriver``: the meta DB in a PostgreSQL database that several instances
    share (zot's names for this key, ``boltdb``, ``redis`` and ``dynamodb``, are warned about)."""

    name: Literal["postgres"]
    url: str = Field(
        min_length=1,
        description="libpq connection URL (postgresql://user@host:5432/db) or key=value "
        "string; libpq's PG* environment variables fill in what it leaves out (PGPASSWORD).",
    )

    @field_validator("url")
    @classmethod
    def _parses(cls, url: str) -> str:
        try:
            from psycopg.conninfo import conninfo_to_dict
        except ImportError:
            raise ValueError(
                "the postgres cacheDriver needs psycopg: pip install 'ocireg[postgres]'"
            ) from None
        try:
            conninfo_to_dict(url)
        except Exception as exc:  # psycopg.ProgrammingError
            # libpq's text names a bad option, or quotes a piece of the string (which may hold
            # a password): only the former is repeated
            said = str(exc) if str(exc).startswith("invalid") else "see libpq's syntax"
            raise ValueError(
                f"not a PostgreSQL connection URL or key=value string: {said}"
            ) from None
        return url


def _check_cache_driver(driver: Any) -> Any:
    """``postgres`` is validated as ocireg's key; any other name is kept to be warned about."""
    if not isinstance(driver, dict) or str(driver.get("name", "")).lower() != "postgres":
        return driver
    try:
        return PostgresCacheConfig.model_validate({**driver, "name": "postgres"})
    except ValidationError as exc:
        problems = [
            f"{'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise ValueError("; ".join(problems)) from None


def _check_time_window(window: str | None) -> str | None:
    if window is not None and window.strip():
        TimeWindow.parse(window)
        return window
    return None


class RootConfig(_Section):
    """One storage root: the main one (``storage``) or one of ``storage.subPaths``; zot
    applies the same keys to both."""

    rootDirectory: str = Field(min_length=1, description="Where repositories are stored.")
    dedupe: bool | None = Field(
        None,
        description="Share identical blobs across repositories (default: true on a local "
        "root; on s3 only when written true).",
    )
    gc: bool = Field(True, description="Collect unreferenced blobs and manifests.")
    gcDelay: Duration = Field(3600.0, description="Minimum age before content is collected.")
    gcInterval: Duration = Field(3600.0, description="How often GC runs.")
    gcTimeWindow: Annotated[str | None, AfterValidator(_check_time_window)] = Field(
        None, description="HH:MM-HH:MM (UTC): GC rounds start only inside it."
    )
    commit: bool = Field(False, description="fsync blobs and metadata before answering.")
    retention: RetentionConfig | None = None
    storageDriver: Annotated[S3DriverConfig | None, BeforeValidator(_check_storage_driver)] = None
    cacheDriver: Annotated[
        PostgresCacheConfig | dict[str, Any] | None, BeforeValidator(_check_cache_driver)
    ] = Field(None, description="name: postgres, url: the meta DB in PostgreSQL.")
    remoteCache: bool | None = None
    redirectBlobURL: bool = False
    maxRepos: int | None = Field(None, ge=0, description="Most repositories; 0: no limit.")

    def resolved_root(self) -> Path:
        """The local directory: the repositories, or with ``storageDriver`` (whose
        ``rootdirectory`` is the prefix in the bucket) ocireg's own state (locks, meta DB)."""
        return Path(self.rootDirectory).expanduser().resolve()

    def on_s3(self) -> bool:
        return self.storageDriver is not None

    def postgres(self) -> PostgresCacheConfig | None:
        """The PostgreSQL meta DB's settings, when ``cacheDriver`` names one."""
        driver = self.cacheDriver
        return driver if isinstance(driver, PostgresCacheConfig) else None

    def dedupes(self) -> bool:
        """Whether blobs are shared by hard links: on by default on a local root; never on
        s3, which has none (see :meth:`dedupes_by_reference`)."""
        return self.dedupe is not False and not self.on_s3()

    def dedupes_by_reference(self) -> bool:
        """Whether an s3 root shares blobs by reference in the meta DB
        (``registry.refdedupe``): only when ``dedupe: true`` is written. Turning it on converts
        the bucket into placeholders that a version without dedupe by reference would read as
        empty blobs, so an existing bucket is never converted without being asked."""
        return self.dedupe is True and self.on_s3()

    def time_window(self) -> TimeWindow | None:
        return TimeWindow.parse(self.gcTimeWindow) if self.gcTimeWindow else None


_SUB_PATH = re.compile(r"^/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$")


class StorageConfig(RootConfig):
    subPaths: dict[str, RootConfig] | None = Field(
        None, description="Repositories whose first path component is the key get that root."
    )
    fastRestart: bool | None = None
    automaticMount: bool = Field(
        True,
        description="Serve a blob mount without `from` from any repository the caller may "
        "read that holds it (ocireg's key; zot has none). False: such a mount starts an upload.",
    )

    @field_validator("subPaths")
    @classmethod
    def _one_component_each(
        cls, routes: dict[str, RootConfig] | None
    ) -> dict[str, RootConfig] | None:
        # zot picks a sub-path by a repository's first path component only, so any other
        # key could never serve a repository: refused rather than silently unused.
        for key in routes or {}:
            if not _SUB_PATH.match(key):
                raise ValueError(
                    f"{key!r}: a sub-path is '/' and one repository path component, such as "
                    "'/team' (zot routes by the first component of a repository's name)"
                )
        return routes

    @model_validator(mode="after")
    def _one_meta_db(self) -> StorageConfig:
        # every root's rows live in the one meta DB: a sub-path cannot have a database of its own
        for key, route in (self.subPaths or {}).items():
            if route.postgres() is not None:
                raise ValueError(
                    f"subPaths.{key}.cacheDriver: the meta DB is one for every storage root; "
                    "set the postgres cacheDriver under storage, not under a sub-path"
                )
        return self

    @model_validator(mode="after")
    def _roots_apart(self) -> StorageConfig:
        # Nested roots would make one root's walk (catalog, GC, scrub) see the other's files.
        roots = {"storage.rootDirectory": self.resolved_root()}
        for key, route in (self.subPaths or {}).items():
            roots[f"storage.subPaths.{key}.rootDirectory"] = route.resolved_root()
        named = list(roots.items())
        for index, (name, root) in enumerate(named):
            for other_name, other in named[index + 1 :]:
                if root == other or root in other.parents or other in root.parents:
                    raise ValueError(f"{other_name} {other} overlaps {name} {root}")
        return self


class TLSConfig(_Section):
    cert: str
    key: str
    cacert: str | None = None


class HTTPConfig(_Section):
    address: str = "127.0.0.1"
    port: int = Field(5000, ge=1, le=65535, json_schema_extra={"type": ["integer", "string"]})
    externalUrl: str | None = None
    realm: str = "ocireg"
    allowOrigin: str | None = None
    tls: TLSConfig | None = None
    compat: list[Literal["docker2s2"]] = Field(default_factory=empty_list)
    auth: AuthConfig | None = None
    accessControl: AccessControlConfig | None = None
    ratelimit: RateLimitConfig | None = None
    readTimeout: Duration | None = None
    writeTimeout: Duration | None = None
    # Connection limits (ocireg's keys; zot has none): `0` turns a timeout or the cap off.
    readHeaderTimeout: Duration = Field(
        20.0,
        description="Time from connecting (or from the first byte after an idle pause) "
        "until a request's headers are in; then the connection closes.",
    )
    idleTimeout: Duration = Field(
        60.0, description="How long a keep-alive connection may wait for its next request."
    )
    bodyStallTimeout: Duration = Field(
        60.0, description="Longest wait for the next part of a request body; then 408."
    )
    maxConnectionsPerClient: int = Field(
        128, ge=0, description="Open connections per client address in each worker process."
    )
    workers: int = Field(1, ge=1, le=64, description="Worker processes serving one root.")
    maxManifestSize: int = Field(4 * 1024 * 1024, ge=1024, description="Bytes; larger gets 413.")
    maxUploadSessionsPerRepository: int | None = Field(
        1000,
        ge=1,
        description="Blob upload sessions open at once in one repository, over all workers "
        "(ocireg's key); past it, 429. null: no cap.",
    )
    maxUploadSessionsPerClient: int | None = Field(
        1000,
        ge=1,
        description="Blob upload sessions open at once per client (address, and user when "
        "logged in), shared out among http.workers (ocireg's key); past it, 429. null: no cap.",
    )

    def verifies_client_certificates(self) -> bool:
        """Whether the server asks TLS clients for a certificate and checks it against
        ``tls.cacert`` (mTLS): a verified certificate then names the user."""
        return self.tls is not None and self.tls.cacert is not None

    def authenticating(self) -> bool:
        if self.auth is None:  # without importing http.auth's models
            return self.verifies_client_certificates()
        from ocireg.auth.settings import authenticating

        return authenticating(self.auth, client_certificates=self.verifies_client_certificates())

    @model_validator(mode="after")
    def _named_callers_need_authentication(self) -> HTTPConfig:
        # zot refuses these too: without authentication every caller is anonymous, so a
        # policy for users, groups or authenticated callers could never apply.
        if self.accessControl and self.accessControl.names_anyone() and not self.authenticating():
            raise ValueError(
                "accessControl: policies for users, groups, defaultPolicy and metrics.users "
                "need an authentication method in http.auth or client certificates "
                "(http.tls.cacert)"
            )
        return self

    @model_validator(mode="after")
    def _mtls_needs_a_ca(self) -> HTTPConfig:
        # Without tls.cacert no client is asked for a certificate, so these options would
        # be ignored: refused, like any part of an authentication setup ocireg cannot honour.
        if self.auth and self.auth.mtls is not None and not self.verifies_client_certificates():
            raise ValueError("auth.mtls: client certificates need tls.cert, tls.key and tls.cacert")
        return self


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


class LogConfig(_Section):
    level: Annotated[LogLevel, BeforeValidator(_lower)] = "info"
    output: str | None = None
    audit: str | None = None


class SchedulerConfig(_Section):
    numWorkers: int | None = Field(None, ge=1)


class Config(_Section):
    distSpecVersion: str = "1.1.1"
    storage: StorageConfig
    http: HTTPConfig = Field(default_factory=HTTPConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    extensions: dict[str, Any] | None = None
    scheduler: SchedulerConfig | None = None
    cluster: ClusterConfig | None = None
    fastRestart: bool | None = None

    def resolved_root(self) -> Path:
        return self.storage.resolved_root()

    @model_validator(mode="after")
    def _cluster_tls_needs_https(self) -> Config:
        # Members share this file, so each serves HTTPS exactly when http.tls is set; TLS
        # settings for reaching members that serve plain HTTP could never apply.
        if self.cluster and self.cluster.tls and self.http.tls is None:
            raise ValueError(
                "cluster.tls: members talk over TLS only when they serve it: set http.tls too"
            )
        if self.cluster and self.http.verifies_client_certificates():
            raise ValueError(
                "cluster: http.tls.cacert (client certificates) cannot be used in a cluster: "
                "a caller's certificate cannot be passed on to the member that owns the "
                "repository, which would take the request as anonymous"
            )
        return self


def default_config() -> Config:
    """The embedded default: 127.0.0.1:5000, ./ocireg-data, Docker manifests accepted."""
    return Config(
        storage=StorageConfig(rootDirectory="./ocireg-data", dedupe=True),
        http=HTTPConfig(compat=["docker2s2"]),
    )


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration, ``extensions`` spelled out from every known
    extension's settings model."""
    from ocireg.extensions.loading import PLANNED, available, settings_model_or_error

    sections: dict[str, Any] = {name: (dict[str, Any] | None, None) for name in sorted(PLANNED)}
    sections |= {
        name: (settings_model_or_error(name, extension) | None, None)
        for name, extension in available().items()
    }
    extensions = create_model("Extensions", __config__=ConfigDict(extra="forbid"), **sections)
    full = create_model("Config", __base__=Config, extensions=(extensions | None, None))
    return full.model_json_schema(mode="validation", schema_generator=SectionsJsonSchema)


def extension_warnings(config: Config, source: str) -> list[str]:
    """Check the ``extensions`` section against the known extensions (raises ConfigError), and
    say which configured ones are not implemented yet."""
    from ocireg.extensions.loading import available, check_all, resolve

    try:
        known = available()
    except (ValueError, TypeError) as exc:  # a broken extension declaration or OCIREG_EXTENSIONS
        raise ConfigError([f"{source}: extensions: {exc}"]) from None
    enabled, warnings = resolve(config.extensions, source, known)
    check_all(config, source, enabled)
    return warnings


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    try:
        if suffix == ".json":
            return json.loads(text)
        if suffix in (".yaml", ".yml"):
            return yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise ConfigError([f"{path}: invalid JSON at line {exc.lineno}: {exc.msg}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{path}: invalid YAML: {exc}"]) from None
    raise ConfigError([f"{path}: unknown format {suffix!r}: use .json, .yaml or .yml"])


_DISTRIBUTION_DRIVERS = frozenset({"filesystem", "inmemory", "s3", "azure", "gcs", "swift"})


def _distribution_format(data: dict[str, Any]) -> bool:
    """distribution's config.yml: ``version: 0.1`` and a storage driver section, which zot's
    format never has."""
    storage = data.get("storage")
    drivers = _DISTRIBUTION_DRIVERS.intersection(storage) if isinstance(storage, dict) else set()
    return "version" in data and bool(drivers)


def load_config(path: str | os.PathLike[str]) -> Config:
    file = Path(path)
    try:
        text = file.read_text()
    except OSError as exc:
        raise ConfigError([f"{file}: cannot read: {exc.strerror or exc}"]) from None
    data = _parse(file, text)
    if not isinstance(data, dict):
        raise ConfigError([f"{file}: (top level): must be a mapping of sections"])
    if _distribution_format(data):
        raise ConfigError([
            f"{file}: this is a CNCF distribution (docker-registry) configuration; ocireg reads "
            "zot's format (storage.rootDirectory, http.address, http.port): see "
            "docs/configuration.md and docs/examples/"
        ])  # fmt: skip
    try:
        config = Config.model_validate(normalise_keys(data, Config))
    except ValidationError as exc:
        raise ConfigError(validation_problems(str(file), exc, model=Config)) from None
    extension_warnings(config, str(file))
    return config
