"""The `metricgate` command: run, validate, components, version (and catalog tools)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from metricgate import __version__
from metricgate.config import Config, load_config, load_config_text
from metricgate.errors import ConfigError
from metricgate.extensions import default_extension_registry
from metricgate.extras import MissingExtraError
from metricgate.pipeline.registry import Kind, Registry

if TYPE_CHECKING:
    from metricgate.pipeline.reload import Reloader
    from metricgate.telemetry.audit import AuditLog
    from metricgate.workers import WorkerExchange

log = logging.getLogger("metricgate")


def default_config_text() -> str:
    """The built-in pipeline: OTLP gRPC 4317 + HTTP 4318 in, Prometheus endpoint 9464 out."""
    return resources.files("metricgate.config").joinpath("default.yaml").read_text("utf-8")


def default_registry() -> Registry:
    """Built-in components plus installed plugins, imported only by the commands that need them
    (`version` and the catalog tools start without loading every component)."""
    from metricgate.components import default_registry as built_in_and_plugins

    return built_in_and_plugins()


def _load(path: str | None, registry: Registry, overrides: Sequence[str] = ()) -> Config:
    if path is None:
        return load_config_text(
            default_config_text(), registry, source="<built-in default>", overrides=overrides
        )
    return load_config(
        Path(path), registry, extensions=default_extension_registry(), overrides=overrides
    )


def _print_config_error(exc: ConfigError, source: str) -> None:
    print(f"metricgate: invalid configuration in {source}:", file=sys.stderr)
    for problem in exc.problems:
        print(f"  {problem}", file=sys.stderr)


def cmd_validate(args: argparse.Namespace) -> int:
    registry = default_registry()
    try:
        config = _load(args.config, registry, args.set)
    except ConfigError as exc:
        _print_config_error(exc, args.config or "<built-in default>")
        return 1
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    pipelines = config.service.pipelines
    print(f"{args.config or '<built-in default>'}: valid ({len(pipelines)} pipeline(s))")
    return 0


def cmd_components(args: argparse.Namespace) -> int:
    registry = default_registry()
    for kind in Kind:
        print(f"{kind.section}:")
        for type_name in registry.types(kind):
            factory = registry.get(kind, type_name)
            description = factory.description if factory else ""
            print(f"  {type_name:<28} {description}".rstrip())
    extensions = default_extension_registry()
    print("extensions:")
    for type_name in extensions.types():
        extension = extensions.get(type_name)
        description = extension.description if extension else ""
        print(f"  {type_name:<28} {description}".rstrip())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from metricgate import role
    from metricgate.pipeline.service import Service
    from metricgate.processors.relabel import playground
    from metricgate.telemetry import SelfMetrics, configure_logging
    from metricgate.workers import Supervisor, WorkerExchange, worker_count

    registry = default_registry()
    try:
        config = _load(args.config, registry, args.set)
    except ConfigError as exc:
        _print_config_error(exc, args.config or "<built-in default>")
        return 1
    logs = config.service.telemetry.logs
    configure_logging(args.log_level or logs.level, args.log_format or logs.format)
    try:
        workers = worker_count(args.workers)
    except ValueError as exc:
        print(f"metricgate: --workers {args.workers!r}: {exc} (or auto)", file=sys.stderr)
        return 2
    if not role.CURRENT.shared:  # a worker's supervisor logged them
        for warning in config.warnings:
            log.warning(warning)
    if workers > 1 and not role.CURRENT.shared:
        return Supervisor(workers, args.arguments, config.service.shutdown_timeout).run()
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        pass
    source = args.config or "<built-in default>"
    from metricgate.pipeline.reload import Reloader
    from metricgate.telemetry.audit import AuditLog

    audit = AuditLog(config.service.telemetry.audit)
    telemetry = SelfMetrics()
    exchange = WorkerExchange(role.CURRENT, telemetry) if role.CURRENT.shared else None
    try:
        service = Service(config, telemetry, audit=audit, exchange=exchange)
    except ConfigError as exc:  # an extension's files (tokens, htpasswd, keys) cannot be read
        _print_config_error(exc, source)
        return 1
    playground.install(service.host, config)

    def audit_reload(reloaded: Config) -> None:
        if audit.enabled:
            audit.config_loaded(source, _config_text(args.config), _components(reloaded))

    reloader = Reloader(
        service,
        lambda: _load(args.config, registry, args.set),
        watch_path=args.config,
        on_reload=[lambda reloaded: playground.install(service.host, reloaded), audit_reload],
    )
    if service.telemetry_server is not None:
        service.telemetry_server.console.reload = (
            reloader.answer if exchange is None else _for_every_worker(reloader)
        )
    text = _config_text(args.config)
    return asyncio.run(_serve(service, _audit(audit, config, source, text), reloader, exchange))


def _for_every_worker(reloader: Reloader) -> Callable[[], Awaitable[tuple[int, dict[str, Any]]]]:
    """`POST /-/reload` under `--workers N`: this worker reloads and answers; once that worked,
    the supervisor is asked (SIGHUP) to pass the reload on to every worker (this one included,
    which finds nothing changed)."""

    async def answer() -> tuple[int, dict[str, Any]]:
        status, body = await reloader.answer()
        if status == 200:
            os.kill(os.getppid(), signal.SIGHUP)
        return status, body

    return answer


def _config_text(path: str | None) -> str:
    if path is None:
        return default_config_text()
    try:
        return Path(path).read_text("utf-8")
    except OSError:  # changed since it was validated: the audit log records what it can
        return ""


def _components(config: Config) -> dict[str, object]:
    """Every configured component's validated config by `section.id` (for the audit log)."""
    components: dict[str, object] = {
        f"{kind.section}.{component_id}": spec.config
        for kind in Kind
        for component_id, spec in config.section(kind).items()
    }
    components.update({f"extensions.{i}": spec.config for i, spec in config.extensions.items()})
    return components


def _audit(
    audit: AuditLog, config: Config, source: str, text: str
) -> Callable[[], Awaitable[AuditLog]]:
    """Opens this run's audit log and records the config load (inside the event loop)."""
    components = _components(config)

    async def open_audit() -> AuditLog:
        if audit.enabled:
            await audit.start()
            audit.config_loaded(source, text, components)
        return audit

    return open_audit


async def _serve(
    service: object,
    open_audit: Callable[[], Awaitable[AuditLog]] | None = None,
    reloader: Reloader | None = None,
    exchange: WorkerExchange | None = None,
) -> int:
    from metricgate.pipeline.service import Service

    assert isinstance(service, Service)
    audit = await open_audit() if open_audit is not None else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        await service.start()
    except (OSError, ConfigError) as exc:  # a port taken, a certificate that does not load
        log.error("could not start: %s", exc)
        if audit is not None:
            await audit.shutdown("could not start")
        return 1
    if exchange is not None:
        await exchange.start()
    if reloader is not None:
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signal.SIGHUP, reloader.trigger, "SIGHUP")
        reloader.start()
    # The data path allocates many small long-lived objects (one set per new series); CPython's
    # default collection threshold (700) makes the cyclic GC rescan them constantly. Start-up
    # objects are frozen out of collection and the young generation is collected less often.
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)
    await stop.wait()
    log.info("shutting down", extra={"deadline_s": service.config.service.shutdown_timeout})
    if reloader is not None:
        await reloader.shutdown()
    if exchange is not None:
        await exchange.shutdown()
    await service.shutdown()
    if audit is not None:
        await audit.shutdown("signal")
    log.info("stopped")
    return 0


def _show_help(parser: argparse.ArgumentParser) -> int:
    """No command given: the help, and the exit code of a usage error."""
    parser.print_help()
    return 2


def _add_set_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY.PATH=VALUE",
        help="override a config value (repeatable; the value is YAML: 5s, true, [a, b], {k: v}); "
        "applied again on every reload",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metricgate", description="A metrics gateway: OTLP in, Prometheus and more out."
    )
    parser.add_argument("--version", action="version", version=f"metricgate {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    parser.set_defaults(func=lambda _: _show_help(parser))

    run = commands.add_parser("run", help="run the gateway")
    run.add_argument("--config", "-c", help="YAML config file (default: the built-in pipeline)")
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    run.add_argument("--log-format", choices=["json", "console"])
    run.add_argument(
        "--workers",
        default="1",
        metavar="N",
        help="worker processes sharing the ports, each metric's series in one of them "
        "(default 1; auto: one per core)",
    )
    _add_set_option(run)
    run.set_defaults(func=cmd_run)

    validate = commands.add_parser("validate", help="check a config file; start nothing")
    validate.add_argument("--config", "-c", help="YAML config file (default: the built-in one)")
    _add_set_option(validate)
    validate.set_defaults(func=cmd_validate)

    components = commands.add_parser("components", help="list the registered component types")
    components.set_defaults(func=cmd_components)

    from metricgate.catalog.cli import add_catalog_commands, add_demo_command
    from metricgate.processors.relabel.cli import add_relabel_test_command

    add_relabel_test_command(commands, default_registry)
    add_catalog_commands(commands)
    add_demo_command(commands)

    version = commands.add_parser("version", help="print the version")
    version.set_defaults(func=lambda _: print(f"metricgate {__version__}") or 0)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        result: int = args.func(args)
    except MissingExtraError as exc:
        print(f"metricgate: {exc}", file=sys.stderr)
        return 1
    return result


if __name__ == "__main__":
    sys.exit(main())
