"""A node that is this machine, for unit tests of code that runs shell scripts on nodes:
:class:`LocalShell` answers ``Remote.run`` by running the script with ``sh`` here."""

from __future__ import annotations

import asyncio
import shlex
import subprocess
from collections.abc import Sequence

from harness.control.remote import CommandResult
from harness.errors import CommandError


class LocalShell:
    """Runs each command with ``sh -c`` on this machine, as ``Remote.run`` runs it on a
    node: an argv is quoted, ``stdin`` is fed, a non-zero exit raises :class:`CommandError`
    unless ``check`` is false, and a command past ``timeout`` raises ``TimeoutError``.
    ``commands`` keeps every script it was given, in order."""

    def __init__(self, name: str = "n1") -> None:
        self.name = name
        self.commands: list[str] = []

    async def run(
        self,
        cmd: str | Sequence[str],
        *,
        sudo: bool = False,
        stdin: str | bytes | None = None,
        timeout: float = 60,  # noqa: ASYNC109 (Remote.run's signature)
        check: bool = True,
    ) -> CommandResult:
        """The command's result, run here (``sudo`` is ignored: tests do not need it)."""
        script = cmd if isinstance(cmd, str) else shlex.join(cmd)
        self.commands.append(script)
        proc = await asyncio.create_subprocess_exec(
            "sh", "-c", script, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        data = stdin.encode() if isinstance(stdin, str) else stdin
        try:
            out, err = await asyncio.wait_for(proc.communicate(data or b""), timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        status = proc.returncode or 0
        if status and check:
            raise CommandError(node=self.name, command=script, exit_status=status,
                               stdout=out.decode(), stderr=err.decode())  # fmt: skip
        return CommandResult(self.name, script, status, out.decode(), err.decode(), 0.0)
