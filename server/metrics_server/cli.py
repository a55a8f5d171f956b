"""Command line: parse every component's flags, validate them, set up logging, run.

The flags belong to the components (each declares its own with `flagset.flag` and checks them in
its `validate()`; `options.Options` lists the classes). This module only assembles them: parse
(`flagset.FlagSet`, pflag's syntax), validate (`Options.validate`), then `--help`, `--version`, the
start-up warnings for accepted-but-ignored flags, and the exit codes: 2 for a refused command
line (the message names the flag), otherwise what the server returns.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Sequence

from metrics_server import __version__
from metrics_server.flagset import NS_PER_SECOND, FlagError, FlagSet
from metrics_server.kube.errors import KubeError
from metrics_server.logs import configure_logging
from metrics_server.options import Options, option_classes

__all__ = ["NS_PER_SECOND", "FlagError", "Options", "flag_set", "main", "parse_options", "usage"]

log = logging.getLogger(__name__)

IGNORED_MESSAGE = "Flag has no effect in this implementation and is ignored"

USAGE_HEADER = """Launch metrics-server

Usage:
  metrics-server [flags]
  metrics-server simulate --help    (the simulated cluster, for demos and tests)
"""


def flag_set() -> FlagSet:
    """Every flag of every component."""
    return FlagSet(option_classes())


def usage() -> str:
    """The `--help` text: upstream's groups, every accepted flag, ignored ones marked."""
    return flag_set().usage(USAGE_HEADER)


def parse_options(argv: Sequence[str], *, validate: bool = True) -> Options:
    """Parse the command line and (unless `validate=False`) check every component's options.
    Raises FlagError naming the flag."""
    options = Options.from_parsed(flag_set().parse(argv))
    if validate:
        try:
            options.validate()
        except FlagError:
            raise
        except (ValueError, KubeError) as exc:  # each component's error carries its flag
            raise FlagError(getattr(exc, "flag", ""), _naming_the_flag(exc)) from exc
    return options


def _naming_the_flag(exc: Exception) -> str:
    """The message of a `FlagError` or of a component's error, starting with the flag unless the
    message already names it."""
    message, flag = str(exc), getattr(exc, "flag", "")
    if isinstance(exc, FlagError) or message.startswith(flag):
        return message
    return f"{flag}: {message}"


SIMULATOR_MISSING = (
    "metrics-server simulate: the simulator is a separate distribution, not installed here: pip install ./sim"
)


def _run_simulator(argv: Sequence[str]) -> int:
    """`metrics-server simulate ...` is `python -m kubesim.simulate ...` in this environment, when
    the simulator (`sim/`, distribution k8s-metrics-kubesim) is installed; otherwise exit 2."""
    # find_spec of a top-level name locates the package without importing it.
    if importlib.util.find_spec("kubesim") is None:
        print(SIMULATOR_MISSING, file=sys.stderr)
        return 2
    # A separate interpreter keeps the simulator out of the server's process and imports.
    os.execv(sys.executable, [sys.executable, "-m", "kubesim.simulate", *argv])
    return 0  # pragma: no cover - execv does not return


def main(argv: Sequence[str] | None = None, *, run: Callable[[Options], int] | None = None) -> int:
    """Entry point of the `metrics-server` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["simulate"]:
        return _run_simulator(args[1:])
    if any(a in ("-h", "--help") for a in args):
        print(usage(), end="")
        return 0
    try:
        options = parse_options(args, validate=False)
        if options.server.version:  # as metrics-server: before any value is checked
            print(f"metrics-server {__version__}")
            return 0
        options.validate()
    except (ValueError, KubeError) as exc:  # FlagError, or a component's error naming its flag
        print(f"Error: {_naming_the_flag(exc)}", file=sys.stderr)
        return 2
    logging_options = options.logging
    configure_logging(
        logging_options.format, logging_options.verbosity, split_stream=logging_options.split_stream
    )
    for ignored in options.ignored_flags:
        log.warning(IGNORED_MESSAGE, extra={"flag": ignored.name, "would": ignored.ignored})
    if run is None:
        from metrics_server.app import run_server

        run = run_server
    return run(options)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
