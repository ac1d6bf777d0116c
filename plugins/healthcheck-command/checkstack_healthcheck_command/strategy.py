"""The ``command`` strategy: run a program with an argument list (never through a shell), then
check its exit code and what it wrote.

The program runs as the server's user, in its own process group (killed whole on timeout), with
a small environment (``PATH``, ``HOME``, ``LANG``, ``LC_ALL``, ``TZ`` of the server, then the
check's ``env`` and ``secretEnv``): the server's own variables, its secret key and database URL
among them, are not passed on.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import time
from typing import Annotated, ClassVar, Literal

import msgspec
from checkstack_healthcheck.errors import seconds
from checkstack_healthcheck.strategy import MASK, CheckResult, Secret, Strategy, remaining
from msgspec import Meta

from .contract import MANAGE

#: Bytes of each output stream read for assertions (the rest is read and dropped, so the
#: program never blocks on a full pipe).
MAX_OUTPUT = 1024 * 1024
#: Bytes of each stream kept in the result.
KEPT_OUTPUT = 4096
#: Server variables a command inherits (nothing else: the server's secrets stay with it).
INHERITED_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")

EnvName = Annotated[str, Meta(min_length=1, max_length=200)]
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
ExitCode = Annotated[int, Meta(ge=0, le=255)]


class OutputAssertion(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """``stream`` (``stdout`` or ``stderr``) ``contains`` / ``notContains`` the text ``value``,
    or ``matches`` the Python regular expression ``value`` (searched)."""

    stream: Literal["stdout", "stderr"] = "stdout"
    operator: Literal["contains", "notContains", "matches"] = "contains"
    value: Annotated[str, Meta(min_length=1, max_length=10_000)]


class CommandConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, rename="camel"):
    """The program to run and what it must answer."""

    #: An absolute path, or a name looked up on ``PATH``.
    command: Annotated[str, Meta(min_length=1, max_length=1_000)]
    args: Annotated[list[Annotated[str, Meta(max_length=10_000)]], Meta(max_length=100)] = []
    env: Annotated[dict[EnvName, Annotated[str, Meta(max_length=10_000)]], Meta(max_length=50)] = {}
    #: Variables holding secrets: encrypted at rest, masked in every output (and in the output
    #: kept from the program).
    secret_env: Annotated[dict[EnvName, Secret], Meta(max_length=50)] = {}
    #: An absolute directory to run in (default: the server's).
    working_dir: Annotated[str, Meta(min_length=1, max_length=1_000)] | None = None
    expected_exit_codes: Annotated[list[ExitCode], Meta(min_length=1, max_length=50)] = (
        msgspec.field(default_factory=lambda: [0])
    )
    assertions: Annotated[list[OutputAssertion], Meta(max_length=20)] = []


class CommandStrategy(Strategy[CommandConfig]):
    id: ClassVar[str] = "command"
    display_name: ClassVar[str] = "Command"
    description: ClassVar[str] = (
        "Run a program on the server host (no shell); check its exit code and output. "
        "Needs the rule healthcheck-command.command.manage."
    )
    config_type: ClassVar[type[msgspec.Struct]] = CommandConfig
    required_rules: ClassVar[tuple[str, ...]] = (MANAGE,)

    def validate(self, config: CommandConfig) -> list[tuple[str, list[str | int]]]:
        problems: list[tuple[str, list[str | int]]] = []
        if "\0" in config.command:
            problems.append(("command must not contain NUL", ["command"]))
        problems.extend(
            ("arguments must not contain NUL", ["args", i])
            for i, arg in enumerate(config.args)
            if "\0" in arg
        )
        for field, variables in (("env", config.env), ("secretEnv", config.secret_env)):
            for name, value in variables.items():
                if not ENV_NAME.fullmatch(name):
                    problems.append(("must be a variable name (letters, digits, _)", [field, name]))
                elif "\0" in value:
                    problems.append(("must not contain NUL", [field, name]))
        if config.working_dir is not None and "\0" in config.working_dir:
            problems.append(("workingDir must not contain NUL", ["workingDir"]))
        if config.working_dir is not None and not os.path.isabs(config.working_dir):
            problems.append(("workingDir must be an absolute path", ["workingDir"]))
        for i, assertion in enumerate(config.assertions):
            if assertion.operator == "matches":
                try:
                    re.compile(assertion.value)
                except re.error as exc:
                    problems.append((f"Invalid regular expression: {exc}", ["assertions", i]))
        return problems

    async def run(self, config: CommandConfig, deadline: float) -> CheckResult:
        # Leave a tenth of the time to kill the process group and report.
        allotted = remaining(deadline) * 0.9
        env = {name: os.environ[name] for name in INHERITED_ENV if name in os.environ}
        env.update(config.env)
        env.update(config.secret_env)
        started = time.monotonic()
        try:
            process = await asyncio.create_subprocess_exec(
                config.command,
                *config.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
                cwd=config.working_dir,
                start_new_session=True,  # its own process group, killed whole on timeout
            )
        except (FileNotFoundError, NotADirectoryError):
            if config.working_dir is not None and not await asyncio.to_thread(
                os.path.isdir, config.working_dir
            ):
                return CheckResult("unhealthy", message="Working directory not found")
            return CheckResult("unhealthy", message="Command not found")
        except PermissionError:
            return CheckResult("unhealthy", message="Permission denied: the command cannot run")
        except OSError as exc:
            return CheckResult(
                "unhealthy", message=f"Command could not start: {exc.strerror or 'error'}"
            )
        try:
            assert process.stdout is not None and process.stderr is not None
            async with asyncio.timeout(allotted):
                stdout, stderr, _ = await asyncio.gather(
                    _read_limited(process.stdout), _read_limited(process.stderr), process.wait()
                )
        except TimeoutError:
            _kill_group(process)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1):
                    await process.wait()  # reaped: no zombie left behind
            return CheckResult(
                "unhealthy",
                latency_ms=_since(started),
                message=f"Command timed out after {seconds(allotted)} s",
            )
        finally:
            # On a timeout, a cancelled run or children left behind: end the whole group.
            _kill_group(process)
        latency = _since(started)
        code = process.returncode
        assert code is not None
        secrets = [value for value in config.secret_env.values() if value]
        out_text = stdout.decode("utf-8", errors="replace")
        err_text = stderr.decode("utf-8", errors="replace")
        data: dict[str, object] = {
            "exitCode": code,
            "stdout": _redact(out_text[:KEPT_OUTPUT], secrets),
            "stderr": _redact(err_text[:KEPT_OUTPUT], secrets),
            "durationMs": latency,
        }
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return CheckResult(
                "unhealthy",
                latency_ms=latency,
                message=f"Command was killed by signal {name}",
                data=data,
            )
        if code not in config.expected_exit_codes:
            expected = ", ".join(str(c) for c in config.expected_exit_codes)
            return CheckResult(
                "unhealthy",
                latency_ms=latency,
                message=f"Exit code {code} (expected {expected})",
                data=data,
            )
        texts = {"stdout": out_text, "stderr": err_text}
        for assertion in config.assertions:
            failed = await _failure(assertion, texts[assertion.stream])
            if failed:
                return CheckResult("unhealthy", latency_ms=latency, message=failed, data=data)
        return CheckResult("healthy", latency_ms=latency, message=f"Exit code {code}", data=data)


async def _read_limited(stream: asyncio.StreamReader) -> bytes:
    """The first :data:`MAX_OUTPUT` bytes of ``stream``; the rest is read and dropped."""
    kept = bytearray()
    while chunk := await stream.read(65_536):
        if len(kept) < MAX_OUTPUT:
            kept += chunk[: MAX_OUTPUT - len(kept)]
    return bytes(kept)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


async def _failure(assertion: OutputAssertion, text: str) -> str | None:
    """The message for a failed assertion, ``None`` when it holds."""
    stream = assertion.stream
    if assertion.operator == "contains":
        return None if assertion.value in text else f"{stream} does not contain the expected text"
    if assertion.operator == "notContains":
        return f"{stream} contains unexpected text" if assertion.value in text else None
    # In a thread: a costly pattern on a long output must not stall the other checks.
    found = await asyncio.to_thread(re.search, assertion.value, text)
    return None if found else f"{stream} does not match the expected pattern"


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


def _since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 3)
