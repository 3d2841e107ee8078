"""Running commands on nodes over SSH: the control layer of clew.

Everything clew does to a node (install a database, start it, kill it, cut its network,
fetch its logs) goes through a :class:`Remote`: one SSH connection per node, reused by every
command, safe to share between many asyncio tasks.

Connecting
----------

::

    from harness.control import connect, connect_all

    remote = await connect(node)                 # a clusters.base.Node
    async with await connect_all(cluster.nodes) as remotes:
        ...

:func:`connect` tries up to ``retries`` times (:data:`DEFAULT_RETRIES`), backing off
exponentially, but only when the network is at fault: connection refused, reset, or no SSH
answer within ``connect_timeout`` (:data:`DEFAULT_CONNECT_TIMEOUT`, which bounds the whole
attempt, so a port that accepts and then says nothing fails in bounded time). A refused
login or a host key that does not match is final at once: retrying cannot fix it. Either
way the :class:`~harness.errors.SSHError` names the node, ``user@host:port``, the key,
the known_hosts file and the reason.

Authentication uses the node's ``key_file``, else its ``password``, else the SSH agent and
the default keys. Host keys are checked against the node's ``known_hosts`` file (the user's
``~/.ssh/known_hosts`` when it is ``None``) unless ``check_host_key`` is false; an unknown
host ("not in known_hosts") and a changed key ("host key mismatch") are both refused.
``~/.ssh/config`` is not read: the Node says everything.

Running commands
----------------

::

    r = await remote.run(["printf", "%s\\n", user_input])    # argv: reaches the node as is
    r = await remote.run("cd /opt/etcd && ./etcd --version")  # str: a shell script
    r.stdout, r.stderr, r.exit_status, r.seconds

**A sequence is an argv**: every element is quoted with :func:`shlex.quote`, so
``; rm -rf /``, ``$(...)``, quotes, newlines and ``*`` arrive as literal arguments. **A
string is a shell script**, run as it is by the login shell: use it when you want pipes,
``&&`` or redirection, and never paste untrusted text into one. Prefer the argv form.

``run`` also takes ``sudo=True`` (``sudo -n -- sh -c …`` unless the user is root),
``stdin`` (str or bytes, then EOF), ``env`` (exported first), ``cwd`` (entered first),
``check`` (default true: a non-zero exit raises :class:`~harness.errors.CommandError`
naming the node, the command, the exit status and the tail of the output) and ``timeout``
(:data:`DEFAULT_COMMAND_TIMEOUT`). Every command has a deadline because a daemon
backgrounded carelessly keeps its channel open forever. At the deadline the channel is
closed, the command's process group on the node gets SIGTERM (every command line first
reports its shell's process id on stderr for this; the line is removed from the output),
and ``CommandError`` says "timed out after N s". Start daemons detached, in their own
session, so that neither a deadline nor a closed connection touches them::

    await remote.run("{ setsid nohup etcd ... >>etcd.log 2>&1 </dev/null & echo $! >pid; }")

At most ``max_channels`` (:data:`DEFAULT_MAX_CHANNELS`, sshd's default ``MaxSessions``)
commands run at once on one connection; more simply wait their turn. If the connection
breaks under a command, that call raises ``SSHError`` (the command may or may not have
run) and the next call reconnects.

Files go over SFTP: ``await remote.upload(local, remote_path)`` and
``await remote.download(remote_path, local)``; a failure is a ``CommandError`` naming the
node and both paths.

Many nodes
----------

:class:`Remotes` (from :func:`connect_all`) maps node names to remotes and fans out::

    results = await remotes.run_all(["systemctl", "is-active", "etcd"], check=False)
    versions = await remotes.on_nodes(lambda r: r.run(["etcd", "--version"]))

Each node's entry is its result or the exception it raised; one node failing never cancels
the others, so always look at every value.

Backends
--------

``backend="asyncssh"`` (default; native asyncio, ~6 ms per command on loopback) or
``"paramiko"`` (blocking calls in a per-remote thread pool; with TCP_NODELAY set it is
nearly as fast). Both pass the same tests.
:mod:`harness.control.loopback` starts a throwaway sshd on 127.0.0.1 for tests and
benchmarks.
"""

from __future__ import annotations

import warnings

# cryptography 51 deprecates DSA, and asyncssh (2.24) still names its DSA classes when it
# is imported and when it loads keys. clew never uses DSA keys: the warning would only be
# noise on every run (and an error under the tests' ``-W error``). Only warnings raised
# from asyncssh's own modules are silenced.
warnings.filterwarnings("ignore", message="DSA is deprecated", module=r"asyncssh(\.|$)")

from harness.control.connect import BACKENDS, connect  # noqa: E402 (after the filter)
from harness.control.fanout import Remotes, connect_all  # noqa: E402
from harness.control.remote import (  # noqa: E402
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CHANNELS,
    DEFAULT_RETRIES,
    DEFAULT_TRANSFER_TIMEOUT,
    CommandResult,
    Remote,
    recording_commands,
    shell_command,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_COMMAND_TIMEOUT",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CHANNELS",
    "DEFAULT_RETRIES",
    "DEFAULT_TRANSFER_TIMEOUT",
    "CommandResult",
    "Remote",
    "Remotes",
    "connect",
    "connect_all",
    "recording_commands",
    "shell_command",
]
