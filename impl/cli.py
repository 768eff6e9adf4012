"""``ocireg``: serve, verify a configuration, print its schema."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ocireg import __version__, unused
from ocireg.config import Config, config_json_schema, default_config, load_config
from ocireg.configcheck import ConfigError
from ocireg.heap import started
from ocireg.logs import configure_logging
from ocireg.notices import startup_warnings
from ocireg.preflight import check_environment


def _load(path: str | None) -> Config:
    return default_config() if path is None else load_config(path)


def _check_files(config: Config, source: str) -> None:
    """What the server must read at start (htpasswd, the token certificate, LDAP
    credentials), named by key path before anything listens."""
    from ocireg.auth.build import build_guard

    build_guard(config, None, source)


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args.config)
    if args.client_report:
        config = _with_client_report(config)
    source = args.config or "(embedded default)"
    check_environment(config, source)  # the log file among them: the log can open it now
    configure_logging(config.log.level, config.log.output)
    _check_files(config, source)
    unused.for_serving()  # before connexion is imported: see impl/unused.py
    from ocireg.app import plan  # imported late: `verify` and `schema` need no server stack
    from ocireg.server import serve

    plan(config)  # refuse to start, in one line per problem, before anything listens
    serve(config)  # logs "ocireg started" once it listens
    return 0


def _with_client_report(config: Config) -> Config:
    """``--client-report``: the configuration with ``extensions.clientreport`` on (its
    settings kept, when the file has the section)."""
    sections = dict(config.extensions or {})
    key = next((k for k in sections if str(k).lower() == "clientreport"), "clientreport")
    section = sections.get(key)
    sections[key] = {**(section if isinstance(section, dict) else {}), "enable": True}
    return config.model_copy(update={"extensions": sections})


def cmd_verify(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    for warning in startup_warnings(config, args.config):
        print(warning, file=sys.stderr)
    check_environment(config, args.config)
    print(f"{args.config}: configuration is valid")
    return 0


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows)
    return "\n".join(line.rstrip() for line in lines)


def cmd_scrub(args: argparse.Namespace) -> int:
    """Check every image offline; exit 1 when any is affected."""
    from ocireg.registry.build import build_registry
    from ocireg.registry.scrub import scrub_repository

    registries = build_registry(load_config(args.config))
    repositories = registries.repositories()
    rows: list[tuple[str, ...]] = [("REPOSITORY", "REFERENCE", "STATUS", "AFFECTED BLOB", "ERROR")]
    progress = sys.stderr.isatty()
    for number, repo in enumerate(repositories, 1):
        if progress:
            line = f"scrubbing {number}/{len(repositories)}: {repo}"
            print(f"\r{line}\x1b[K", end="", file=sys.stderr, flush=True)
        for r in scrub_repository(registries.of(repo), repo):
            rows.append((r.repo, r.reference, r.status, r.affected_blob, r.error))
    if progress:
        print("\r\x1b[K", end="", file=sys.stderr)
    print(_table(rows))
    affected = sum(row[2] == "affected" for row in rows)
    print(f"{len(rows) - 1} image(s) checked, {affected} affected", file=sys.stderr)
    return 1 if affected else 0


def cmd_gc(args: argparse.Namespace) -> int:
    from ocireg.gccommand import run_gc

    configure_logging("warn", None)  # its own lines are the answer; a problem is a JSON line
    return run_gc(load_config(args.config), args.config, args.dry_run, args.ignore_window)


def cmd_schema(_args: argparse.Namespace) -> int:
    print(json.dumps(config_json_schema(), indent=2))
    return 0


def cmd_conformance(args: argparse.Namespace) -> int:
    try:
        from ocireg.conformance import runner
    except ImportError as missing:
        print(f"ocireg conformance needs {missing.name}: pip install 'ocireg[conformance]'")
        return 2
    url = args.url or os.environ.get("OCI_ROOT_URL")
    if not url:
        print("ocireg conformance: give --url or set OCI_ROOT_URL", file=sys.stderr)
        return 2
    if args.extension:
        return _extension_conformance(args, url)
    workflows = [name.strip() for name in args.workflows.split(",") if name.strip()]
    unknown = sorted(set(workflows) - set(runner.WORKFLOWS))
    if unknown:
        known = ", ".join(runner.WORKFLOWS)
        print(f"ocireg conformance: unknown workflow {', '.join(unknown)} (known: {known})")
        return 2
    report_dir = os.environ.get("OCI_REPORT_DIR")
    junit, html = args.junit, args.html
    if report_dir:
        Path(report_dir).mkdir(parents=True, exist_ok=True)
        junit = junit or str(Path(report_dir) / "junit.xml")
        html = html or str(Path(report_dir) / "report.html")
    env = {
        key: value
        for key, value in {
            "OCI_NAMESPACE": args.namespace,
            "OCI_CROSSMOUNT_NAMESPACE": args.crossmount_namespace,
            "OCI_USERNAME": args.username,
            "OCI_PASSWORD": args.password,
            "OCI_AUTOMATIC_CROSSMOUNT": args.automatic_crossmount,
            "OCI_SCHEMA": args.schema,
            "OCI_TLS_VERIFY": "false" if args.insecure else None,
            "OCI_DEBUG": "1" if args.debug else None,
        }.items()
        if value is not None
    }
    options = runner.Options(
        url=url.rstrip("/"),
        workflows=workflows,
        env=env,
        junit=Path(junit) if junit else None,
        html=Path(html) if html else None,
        verbose=args.verbose,
    )
    status, report = runner.run(options)
    assert isinstance(status, int)
    print(report.summary())
    return status


def _extension_conformance(args: argparse.Namespace, url: str) -> int:
    from ocireg.conformance.extension import Target, check_extension

    fragment = Path(args.extension)
    if not fragment.is_file():
        print(f"ocireg conformance: {fragment}: no such file", file=sys.stderr)
        return 2
    target = Target(
        url=url.rstrip("/"),
        username=args.username or os.environ.get("OCI_USERNAME"),
        password=args.password or os.environ.get("OCI_PASSWORD"),
        verify=not args.insecure,
        namespace=args.namespace or "oci-conformance/extension",
        examples=args.examples,
    )
    definition = Path(args.definition) if args.definition else None
    report = check_extension(fragment, target, definition)
    print(report.render())
    return 1 if report.failed else 0


def _conformance_parser(commands: Any) -> None:
    run = commands.add_parser(
        "conformance",
        help="run the OCI conformance suite against a registry URL",
        description="Check a registry against the OCI Distribution Specification v1.1. "
        "Credentials and options may also come from the upstream suite's OCI_* variables.",
    )
    run.add_argument("--url", help="registry root URL (default: $OCI_ROOT_URL)")
    run.add_argument(
        "--workflows",
        default="pull,push,discovery,management",
        help="comma-separated: pull, push, discovery, management; opt-in: main (the spec's "
        "main-branch additions), clients (oras, skopeo, Notary), fuzz (schemathesis) "
        "(default: the four v1.1 workflows)",
    )
    run.add_argument("--namespace", help="repository to use (default: oci-conformance/test)")
    run.add_argument("--crossmount-namespace", help="repository mounts go to")
    run.add_argument("--username", help="for Basic auth or the token server")
    run.add_argument("--password")
    run.add_argument(
        "--automatic-crossmount",
        choices=["true", "false"],
        help="expect a mount without from= to succeed (true) or to start an upload (false)",
    )
    run.add_argument(
        "--schema",
        choices=["strict", "warn", "off"],
        help="check responses against spec/openapi.yaml: fail (strict), list (warn, default)",
    )
    run.add_argument("--junit", metavar="FILE", help="write a JUnit XML report")
    run.add_argument("--html", metavar="FILE", help="write an HTML report")
    run.add_argument("--insecure", action="store_true", help="do not verify TLS certificates")
    run.add_argument("--debug", action="store_true", help="print every request and response")
    run.add_argument("-v", "--verbose", action="store_true", help="one line per check")
    run.add_argument(
        "--extension",
        metavar="FRAGMENT",
        help="check one extension instead: its OpenAPI fragment's names, its definition "
        "document, discovery, every operation (schemathesis) and undeclared paths",
    )
    run.add_argument(
        "--definition",
        metavar="DOC",
        help="with --extension: its definition document (default: the fragment's .md)",
    )
    run.add_argument(
        "--examples",
        type=int,
        default=25,
        metavar="N",
        help="with --extension: generated requests per operation (default 25)",
    )
    run.set_defaults(run=cmd_conformance)


_GC_HELP = """\
Collect garbage now, with the background GC's rules, and print each manifest, blob and upload
session removed (repository, digest, size), then the total. Rules, per storage root: an
untagged manifest that no index lists and that has no subject, and a referrer whose subject is
gone, once older than gcDelay; then every blob no remaining manifest references, once older
than gcDelay; upload sessions idle for gcDelay; tags and untagged manifests as retention
decides (its dryRun included); a repository left with nothing in it is removed and leaves the
catalog; the dedupe store is swept. A root with gc: false is skipped; gcInterval does not
apply; outside gcTimeWindow a run is refused (see --ignore-window). Safe while a server runs
on the same root (the same per-repository file locks). Exit 0 on success, 1 with one line for
a bad configuration, 2 when refused by gcTimeWindow."""


def _gc_parser(commands: Any) -> None:
    gc = commands.add_parser(
        "gc",
        help="collect garbage now and print what is removed (--dry-run: what would be)",
        description=_GC_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gc.add_argument("config", metavar="CONFIG", help="the server's configuration file")
    gc.add_argument(
        "--dry-run", action="store_true", help="remove nothing; print what a run would remove"
    )
    gc.add_argument(
        "--ignore-window",
        action="store_true",
        help="collect now even outside storage.gcTimeWindow",
    )
    gc.set_defaults(run=cmd_gc)


def cmd_ext_new(args: argparse.Namespace) -> int:
    from ocireg.extkit.scaffold import ScaffoldError, names, scaffold

    try:
        target = Path(args.dir or names(args.name, args.namespace)["@DIST@"])
        written = scaffold(args.name, args.namespace, target)
    except ScaffoldError as error:
        print(f"ocireg ext new: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    print(
        f"\nNext: cd {target} && pip install -e '.[test]' && pytest\n"
        f"Then enable it in a registry's configuration: extensions: {{{args.name}: {{}}}}",
        file=sys.stderr,
    )
    return 0


def _ext_parser(commands: Any) -> None:
    ext = commands.add_parser("ext", help="the extension kit: start an extension of your own")
    actions = ext.add_subparsers(dest="action", required=True, metavar="ACTION")
    new = actions.add_parser(
        "new",
        help="write a working extension package (its own distribution) into a new directory",
        description="Write a working extension as a package of its own: declaration, settings, "
        "OpenAPI fragment, definition document, handlers and tests. Installed with pip beside "
        "ocireg, it is discovered through the ocireg.extensions entry point. See "
        "docs/extension-authors.md.",
    )
    new.add_argument(
        "name",
        metavar="NAME",
        help="the extension's name: its configuration section and URL module "
        "(lowercase letters and digits)",
    )
    new.add_argument(
        "--namespace",
        required=True,
        metavar="NS",
        help="its URL namespace, such as _acme (the leading _ may be left out)",
    )
    new.add_argument(
        "--dir",
        metavar="DIR",
        help="where to write it (default: ./ocireg-<ns>-<name>); absent or empty",
    )
    new.set_defaults(run=cmd_ext_new)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocireg", description="A strict OCI registry.")
    parser.add_argument("--version", action="version", version=f"ocireg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve the registry (no CONFIG: embedded default)",
        description="Serve the registry. Without CONFIG: the embedded default, "
        "http://127.0.0.1:5000 with storage in ./ocireg-data.",
    )
    serve.add_argument(
        "config",
        nargs="?",
        metavar="CONFIG",
        help="a configuration file in zot's format, JSON (.json) or YAML (.yaml, .yml); "
        "see docs/configuration.md, and check one with 'ocireg verify CONFIG'",
    )
    serve.add_argument(
        "--client-report",
        action="store_true",
        help="record how clients depart from the distribution spec (extensions.clientreport); "
        "read it with 'ocireg client-report URL'",
    )
    serve.set_defaults(run=cmd_serve)
    verify = commands.add_parser("verify", help="check a configuration file and exit")
    verify.add_argument("config", metavar="CONFIG")
    verify.set_defaults(run=cmd_verify)
    scrub = commands.add_parser(
        "scrub",
        help="verify every stored image against its digests, offline (exit 1 if any is affected)",
    )
    scrub.add_argument("config", metavar="CONFIG")
    scrub.set_defaults(run=cmd_scrub)
    _gc_parser(commands)
    schema = commands.add_parser("schema", help="print the configuration's JSON Schema")
    schema.set_defaults(run=cmd_schema)
    _conformance_parser(commands)
    _ext_parser(commands)
    from ocireg.ext.cve.cli import add_parser as cve_parser  # argparse only; the rest on use

    cve_parser(commands)
    from ocireg.ext.clientreport.cli import add_parser as client_report_parser

    client_report_parser(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    if run is not cmd_serve:  # a server says when its start-up is over (ocireg.launch)
        started()
    try:
        return run(args)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
