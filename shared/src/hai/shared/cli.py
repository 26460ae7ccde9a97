"""The ``hai`` command.

Built-in subcommands are ``info`` and ``demo``; every other subcommand group comes from an
installed domain distribution through the ``hai.commands`` entry point group. A domain's entry
point is ``register(parser)``: it adds its subcommands to ``parser`` and gives each a handler
with ``parser.set_defaults(handler=fn)``, where ``fn(args)`` returns an exit status or None.
Only the group being run is imported, so ``hai`` stays fast as domains are added.

Errors a user can fix (:class:`~hai.shared.errors.HaiError`) print one line and exit with 2;
``hai --debug ...`` (or ``HAI_DEBUG=1``) shows their traceback too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from hai.shared import __version__, plugins
from hai.shared.errors import HaiError, MissingPackageError
from hai.shared.files import to_jsonable
from hai.shared.progress import is_quiet, set_quiet

Handler = Callable[[argparse.Namespace], int | None]


def print_json(data: Any) -> None:
    """Print ``data`` as one JSON document on standard output (for ``--json`` flags)."""
    print(json.dumps(to_jsonable(data), indent=2, allow_nan=False))


def _first_command(argv: Sequence[str]) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token
    return None


def _cmd_info(args: argparse.Namespace) -> int:
    from hai.shared.info import collect_info, format_info

    info = collect_info()
    if args.json:
        print_json(info.to_dict())
    else:
        print(format_info(info))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from hai.shared.demo import run_demos

    only = [name for item in args.only or [] for name in item.split(",") if name]
    run = run_demos(args.out, only=only, seed=args.seed, device=args.device)
    if args.json:
        print_json(
            {
                "report": str(run.files.index_html),
                "metrics": str(run.files.metrics_json),
                "domains": {o.domain: {"ok": o.ok, "error": o.error} for o in run.outcomes},
            }
        )
    else:
        if not run.outcomes:
            print(
                "No hai domain package is installed, so there is nothing to demo.\n"
                "Install one, e.g. `pip install ./packages/hai-scale` (or `pip install hai-scale`)."
            )
        for outcome in run.outcomes:
            status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
            print(f"{outcome.domain:<10} {outcome.measurement.wall_s:7.1f} s  {status}")
        print(f"report:  {run.files.index_html}")
        print(f"metrics: {run.files.metrics_json}")
    return 0 if run.ok else 1


class OneLineArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one line (the usage is one --help away).

    Domains pass it as ``parser_class`` to their subparsers, so that ``hai DOMAIN COMMAND`` with a
    bad argument prints one line and exits 2, like every other user error.

    >>> p = OneLineArgumentParser(prog="hai x")
    >>> _ = p.add_argument("--n", type=int)
    >>> import contextlib, io
    >>> err = io.StringIO()
    >>> with contextlib.redirect_stderr(err):
    ...     try:
    ...         p.parse_args(["--n", "two"])
    ...     except SystemExit as exc:
    ...         print(exc.code)
    2
    >>> err.getvalue().splitlines()
    ["hai x: error: argument --n: invalid int value: 'two' (see hai x --help)"]
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``hai`` parser; only the domain group named in ``argv`` is imported."""
    parser = argparse.ArgumentParser(
        prog="hai", description="hai: published methods for grids, photonics, PET, forecasting and scaling."
    )
    parser.add_argument("--version", action="version", version=f"hai {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=None, _parser=parser)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    info = sub.add_parser("info", help="installed hai packages, torch, devices, energy sensors")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(handler=_cmd_info, _parser=info)

    demo = sub.add_parser("demo", help="run every installed domain's demo and write a report")
    demo.add_argument("--out", default="hai-demo", help="report folder (default: ./hai-demo)")
    demo.add_argument(
        "--only", action="append", metavar="DOMAIN", help="run only these demos (repeat or comma-separate)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N (default auto)")
    demo.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    demo.set_defaults(handler=_cmd_demo, _parser=demo)

    wanted = _first_command(argv)
    for name, plugin in plugins.commands().items():
        if name in ("info", "demo"):
            continue
        group = sub.add_parser(name, help=f"commands of {plugin.distribution} {plugin.version}")
        group.set_defaults(handler=None, _parser=group)
        if name == wanted:
            register = plugin.load()
            register(group)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``hai`` command with ``argv`` (default: the process arguments); return the status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list or os.environ.get("HAI_DEBUG", "") not in ("", "0")
    # --quiet holds for this command only: main() called from Python leaves no state behind.
    was_quiet = is_quiet()
    try:
        wanted = _first_command(args_list)
        installed = plugins.commands()
        if wanted in plugins.KNOWN_DOMAINS and wanted not in installed:
            dist = plugins.KNOWN_DOMAINS[wanted]
            raise MissingPackageError(
                f"`hai {wanted}` needs the {dist} distribution, which is not installed",
                hint=f"pip install {dist}, or pip install ./packages/{dist} from a clone",
            )
        parser = build_parser(args_list)
        args = parser.parse_args(args_list)
        if args.quiet:
            set_quiet(True)
        handler: Handler | None = args.handler
        if handler is None:
            # A group without a command did nothing: say so and fail, as argparse does.
            group: argparse.ArgumentParser = args._parser
            group.print_help(sys.stderr)
            print(f"{group.prog}: error: a command is needed (one of those listed above)", file=sys.stderr)
            return 2
        return int(handler(args) or 0)
    except HaiError as exc:
        if debug:
            traceback.print_exc()
        print(f"hai: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # A file the user named that cannot be opened (missing, a folder, no permission) is
        # their input, not a bug; any other OS error keeps its traceback.
        if exc.filename is None:
            raise
        if debug:
            traceback.print_exc()
        reason = exc.strerror or type(exc).__name__
        print(f"hai: error: {exc.filename}: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hai: interrupted", file=sys.stderr)
        return 130
    finally:
        set_quiet(was_quiet)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
