"""Reading the systemd files of deploy/systemd the way systemd does, and running their
commands on this machine with the install paths moved into a test folder.

configparser cannot read unit files: systemd repeats keys (``DeviceAllow=`` twice, several
``ExecStartPost=``) and joins lines ending in a backslash. The parser here keeps every value
in order and joins continuation lines as systemd.syntax(7) says (the backslash becomes a
space; comment lines inside a continuation are skipped).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
VENV_BIN = Path(sys.executable).parent

INSTALL_BIN = "/opt/lockgate/bin/"
"""Where the units expect lockgate (docs/operations.md installs it there)."""
RUN_DIR = "/run/lockgate-sim"
"""Where the test-bench units keep their runtime files."""


@dataclass(frozen=True)
class Unit:
    """A parsed unit file: every (key, value) of every section, in file order."""

    path: Path
    sections: dict[str, list[tuple[str, str]]]

    def values(self, section: str, key: str) -> list[str]:
        return [v for k, v in self.sections.get(section, []) if k == key]

    def value(self, section: str, key: str) -> str:
        """The effective value of a single-valued key (the last assignment wins)."""
        found = self.values(section, key)
        assert found, f"{self.path.name}: [{section}] has no {key}="
        return found[-1]

    def has(self, section: str, key: str) -> bool:
        return bool(self.values(section, key))


def parse_unit(path: Path) -> Unit:
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line.startswith(("#", ";")):
            continue
        if pending:
            line = pending + " " + line
            pending = ""
        if line.endswith("\\"):
            pending = line[:-1].rstrip()
            continue
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path.name}: {line!r} is outside every section"
        key, sep, value = line.partition("=")
        assert sep, f"{path.name}: {line!r} is not KEY=VALUE"
        current.append((key.strip(), value.strip()))
    assert not pending, f"{path.name}: the last line ends in a backslash"
    return Unit(path, sections)


# ------------------------------------------------------------------ running commands


def _specifiers(text: str, instance: str | None) -> str:
    def one(m: re.Match[str]) -> str:
        spec = m.group(1)
        if spec == "%":
            return "%"
        if spec == "i" and instance is not None:
            return instance
        raise AssertionError(f"specifier %{spec} is not emulated here")

    return re.sub(r"%(.)", one, text)


def _variables(text: str, env: Mapping[str, str]) -> list[str]:
    """Split a command line as systemd does: quotes, ``$VAR`` as a word of its own split at
    whitespace, ``${VAR}`` inside a word, ``$$`` a literal ``$``."""
    marker = "\x00"
    text = text.replace("$$", marker)
    words: list[str] = []
    for word in shlex.split(text, posix=True):
        whole = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", word)
        if whole:
            words.extend(env.get(whole.group(1), "").split())
            continue
        word = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: env.get(m.group(1), ""), word)
        words.append(word.replace(marker, "$"))
    return words


def argv(
    command: str,
    *,
    instance: str | None = None,
    env: Mapping[str, str] | None = None,
    paths: Mapping[str, str] | None = None,
) -> list[str]:
    """The argument vector systemd would run for an ``Exec*=`` value, with install paths
    replaced (``paths``: prefix in the unit -> prefix here)."""
    command = command.lstrip("-@:+!")
    for old, new in {INSTALL_BIN: f"{VENV_BIN}/", **(paths or {})}.items():
        command = command.replace(old, new)
    return _variables(_specifiers(command, instance), env or {})


def environment(unit: Unit, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The ``Environment=`` assignments of the unit's [Service], then ``extra`` (standing in for
    its ``EnvironmentFile=``)."""
    out: dict[str, str] = {}
    for assignment in unit.values("Service", "Environment"):
        for item in shlex.split(assignment):
            key, _, value = item.partition("=")
            out[key] = value
    out.update(extra or {})
    return out


def process_env(variables: Mapping[str, str]) -> dict[str, str]:
    """This process's environment with the unit's variables, and lockgate's install first on
    the search path (as /opt/lockgate/bin would be)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCKGATE_")}
    env.update(variables)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_post(command: list[str], env: Mapping[str, str], timeout: float = 20.0) -> None:
    """Run an ``ExecStartPost=`` command; like systemd, a non-zero exit fails the start."""
    done = subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (
        f"{command[:3]} exited {done.returncode}: {done.stderr.strip() or done.stdout.strip()}"
    )


# ------------------------------------------------------------------ environment files


def parse_environment_file(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines as systemd's environment files (env-file.c) read them.

    A value that starts with a quote is quoted (single: literal; double: backslash escapes
    ``"``, ``\\``, ``$`` and `````); an unquoted value keeps quotes literally, a backslash
    takes the next character literally, trailing whitespace is dropped. Values that switch
    between quoting styles are not produced by lockgate's units and are refused here.
    """
    out: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        key, sep, raw = stripped.partition("=")
        assert sep, f"not KEY=VALUE: {line!r}"
        raw = raw.lstrip()
        if raw[:1] == "'":
            assert raw.endswith("'") and raw.count("'") == 2, f"unsupported quoting: {raw!r}"
            out[key.strip()] = raw[1:-1]
            continue
        if raw[:1] == '"':
            m = re.fullmatch(r'"((?:[^"\\]|\\.)*)"', raw)
            assert m, f"unsupported quoting: {raw!r}"
            out[key.strip()] = re.sub(
                r"\\(.)",
                lambda e: e.group(1) if e.group(1) in '"\\$`' else e.group(0),
                m.group(1),
            )
            continue
        value, escaped = [], False
        for ch in raw:
            if escaped:
                value.append(ch)
                escaped = False
            elif ch == "\\":
                escaped = True
            else:
                value.append(ch)
        out[key.strip()] = "".join(value).rstrip()
    return out


def mosquitto_sub() -> str:
    """The mosquitto_sub client (reads retained messages for the tests)."""
    found = shutil.which("mosquitto_sub")
    if found is None:
        pytest.fail("mosquitto_sub is missing (it comes with the mosquitto clients package)")
    return found
