"""How the CLI fails: one line on stderr, and an exit code that says why.

- ``2``: bad input — an unknown option, a missing or malformed argument, a value the domain
  refuses by its shape (a credential number that is not one, a time that is not ISO 8601).
  The line names the option or argument and the reason, and nothing was changed.
- ``1``: a refusal or a failure — the input was well formed but the state refuses it (an
  unknown credential, a role that may not act), or something outside failed (the database).

:class:`LockgateGroup` is the root command: whatever a command lets escape ends as such a line
(set ``LOCKGATE_DEBUG=1`` to see the traceback of an unexpected error).
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Any, Final, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from gateway.domain.errors import DomainError

BAD_INPUT: Final = 2
REFUSED: Final = 1
DEBUG_ENV: Final = "LOCKGATE_DEBUG"

err_console = Console(stderr=True)


def one_line(text: str) -> str:
    """``text`` with its line breaks folded into spaces."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def fail(message: str, code: int = REFUSED) -> NoReturn:
    """Print ``error: MESSAGE`` as one line on stderr and exit with ``code``."""
    err_console.print(
        f"[bold red]error:[/] {escape(one_line(message))}", highlight=False, soft_wrap=True
    )
    raise typer.Exit(code)


def validation_message(exc: ValidationError, names: dict[str, str] | None = None) -> str:
    """The first error of ``exc`` naming the field (through ``names``, a map from model field
    to CLI option or argument) and the reason; how many more there are, if any."""
    errors = exc.errors()
    first = errors[0]
    loc = [str(p) for p in first["loc"]]
    field = ".".join(loc)
    if names and loc and loc[0] in names:
        field = ".".join([names[loc[0]], *loc[1:]])
    message = str(first["msg"]).removeprefix("Value error, ")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{field}: {message}{more}" if field else f"{message}{more}"


def _usage(exc: typer.TyperException) -> int:
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "lockgate"
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        # A group given no command: its help is the answer.
        err_console.print(ctx.get_help(), highlight=False, markup=False)
        return int(exc.exit_code)
    err_console.print(
        f"[bold red]error:[/] {escape(path)}: {escape(one_line(exc.format_message()))} "
        f"(see {escape(path)} --help)",
        highlight=False,
        soft_wrap=True,
    )
    return int(exc.exit_code)


def _unexpected(exc: BaseException) -> int:
    if os.environ.get(DEBUG_ENV):
        traceback.print_exception(exc, file=sys.stderr)
    err_console.print(
        f"[bold red]error:[/] unexpected {type(exc).__name__}: {escape(one_line(str(exc)))} "
        f"(set {DEBUG_ENV}=1 for the traceback)",
        highlight=False,
        soft_wrap=True,
    )
    return REFUSED


def control_characters(args: Sequence[str]) -> str | None:
    """The message for the first argument holding a control character (names the option it
    belongs to when there is one), or ``None``. No argument of any command may hold one."""
    for i, arg in enumerate(args):
        if any(ord(ch) < 32 or ord(ch) == 127 for ch in arg):
            option, eq, _ = arg.partition("=")
            if eq and option.startswith("--"):
                where = option
            elif i > 0 and args[i - 1].startswith("-") and "=" not in args[i - 1]:
                where = args[i - 1]
            else:
                where = f"argument {arg!r}"
            return f"{where}: must not contain control characters (line breaks, tabs, NUL ...)"
    return None


class LockgateGroup(TyperGroup):
    """The root command: turns every error into one line on stderr and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        given = list(sys.argv[1:] if args is None else args)
        problem = control_characters(given)
        if problem is not None:
            err_console.print(f"[bold red]error:[/] {escape(problem)}", highlight=False)
            if not standalone_mode:
                return BAD_INPUT
            sys.exit(BAD_INPUT)
        try:
            result = super().main(
                given,
                prog_name,
                complete_var,
                standalone_mode=False,
                windows_expand_args=windows_expand_args,
                **extra,
            )
            code = result if isinstance(result, int) and not isinstance(result, bool) else 0
        except typer.TyperException as exc:
            code = _usage(exc)
        except typer.Abort:
            err_console.print("[bold red]error:[/] aborted", highlight=False)
            code = REFUSED
        except ValidationError as exc:
            err_console.print(
                f"[bold red]error:[/] {escape(one_line(validation_message(exc)))}",
                highlight=False,
                soft_wrap=True,
            )
            code = BAD_INPUT
        except DomainError as exc:
            err_console.print(
                f"[bold red]error:[/] {escape(one_line(f'{exc.code}: {exc}'))}",
                highlight=False,
                soft_wrap=True,
            )
            code = REFUSED
        except Exception as exc:
            code = _unexpected(exc)
        if not standalone_mode:
            return code
        sys.exit(code)


__all__ = [
    "BAD_INPUT",
    "REFUSED",
    "LockgateGroup",
    "control_characters",
    "fail",
    "one_line",
    "validation_message",
]
