"""``ocireg``: serve, verify a configuration, print its schema."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from ocireg import __version__
from ocireg.config import Config, ConfigError, config_json_schema, default_config, load_config


def _load(path: str | None) -> Config:
    return default_config() if path is None else load_config(path)


def _check_files(config: Config, source: str) -> None:
    """Files the server must read at start, named by key path before anything listens."""
    problems = []
    if config.http.tls is not None:
        for key in ("cert", "key", "cacert"):
            value = getattr(config.http.tls, key)
            if value is not None and not os.access(value, os.R_OK):
                problems.append(f"{source}: http.tls.{key}: cannot read {value}")
    if problems:
        raise ConfigError(problems)


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load(args.config)
    _check_files(config, args.config or "(embedded default)")
    from ocireg.server import serve  # imported late: `verify` and `schema` need no server stack

    root = config.resolved_root()
    print(
        f"ocireg {__version__} serving http://{config.http.address}:{config.http.port} "
        f"from {root} with {config.http.workers} worker(s)",
        file=sys.stderr,
    )
    serve(config)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    load_config(args.config)
    print(f"{args.config}: configuration is valid")
    return 0


def cmd_schema(_args: argparse.Namespace) -> int:
    print(json.dumps(config_json_schema(), indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ocireg", description="A strict OCI registry.")
    parser.add_argument("--version", action="version", version=f"ocireg {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="serve the registry (no CONFIG: embedded default)")
    serve.add_argument("config", nargs="?", metavar="CONFIG")
    serve.set_defaults(run=cmd_serve)
    verify = commands.add_parser("verify", help="check a configuration file and exit")
    verify.add_argument("config", metavar="CONFIG")
    verify.set_defaults(run=cmd_verify)
    schema = commands.add_parser("schema", help="print the configuration's JSON Schema")
    schema.set_defaults(run=cmd_schema)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
