"""The bank workload: transfers between accounts, and reads of every balance at once.

Database-agnostic (the suite supplies the client). Ops::

    {"f": "transfer", "value": {"from": 2, "to": 5, "amount": 3}}
        -> ok; fail with error "insufficient" when the source has less than the amount
    {"f": "read"}  -> ok, value {"0": 12, "1": 13, ...}   (every account's balance)

Accounts are ``0 .. accounts-1``, starting with ``total`` spread evenly (the remainder in
account 0); clients create them on first use, atomically, if they do not exist. Transfers
never make a balance negative, so every ``ok`` read must show ``total`` and no negative
balance: checked by :mod:`checkers.collections.bank` (Jepsen's bank checker). After the
faults are healed every worker reads once more.

Options: ``accounts`` (:data:`DEFAULT_ACCOUNTS`), ``total`` (:data:`DEFAULT_TOTAL`),
``max_transfer`` (:data:`DEFAULT_MAX_TRANSFER`), ``read_fraction``
(:data:`DEFAULT_READ_FRACTION`).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

from checkers.collections import bank as bank_checker
from checkers.result import Result
from harness.api import Client, Op, TestContext, Workload
from harness.errors import ConfigError
from harness.history import History
from harness.workloads import check_in_budget, option_float, option_int

__all__ = [
    "DEFAULT_ACCOUNTS",
    "DEFAULT_MAX_TRANSFER",
    "DEFAULT_READ_FRACTION",
    "DEFAULT_TOTAL",
    "INSUFFICIENT",
    "OPTIONS",
    "BankGenerator",
    "BankShape",
    "bank_shape",
    "bank_workload",
    "initial_balances",
]

DEFAULT_ACCOUNTS = 8
DEFAULT_TOTAL = 100
DEFAULT_MAX_TRANSFER = 5
DEFAULT_READ_FRACTION = 0.5

#: The options (``-o NAME=VALUE``) the bank workload reads.
OPTIONS = {
    "accounts": f"how many accounts ({DEFAULT_ACCOUNTS})",
    "total": f"the money in all accounts together ({DEFAULT_TOTAL})",
    "max_transfer": f"the largest transfer ({DEFAULT_MAX_TRANSFER})",
    "read_fraction": f"the share of ops that read every balance ({DEFAULT_READ_FRACTION})",
}
#: The error of a transfer refused because the source account has too little.
INSUFFICIENT = "insufficient"


class BankShape:
    """The accounts and money of a bank test (from the options)."""

    def __init__(self, accounts: int, total: int, max_transfer: int, read_fraction: float):
        if accounts < 2:
            raise ConfigError(f"option 'accounts' must be at least 2, got {accounts}")
        if not 0 < read_fraction < 1:
            raise ConfigError(f"option 'read_fraction' must be in (0, 1), got {read_fraction}")
        self.accounts = accounts
        self.total = total
        self.max_transfer = max_transfer
        self.read_fraction = read_fraction


def bank_shape(options: Mapping[str, Any]) -> BankShape:
    """The :class:`BankShape` the options describe (defaults above)."""
    fraction = option_float(options, "read_fraction", DEFAULT_READ_FRACTION)
    return BankShape(
        option_int(options, "accounts", DEFAULT_ACCOUNTS),
        option_int(options, "total", DEFAULT_TOTAL),
        option_int(options, "max_transfer", DEFAULT_MAX_TRANSFER),
        fraction,
    )


def initial_balances(accounts: int, total: int) -> dict[int, int]:
    """Account -> opening balance: ``total`` spread evenly, the remainder in account 0."""
    each, rest = divmod(total, accounts)
    return {a: each + (rest if a == 0 else 0) for a in range(accounts)}


class BankGenerator:
    """Reads (``read_fraction`` of ops) and random transfers between distinct accounts."""

    def __init__(self, rng: random.Random, shape: BankShape) -> None:
        self.rng = rng
        self.shape = shape

    def __call__(self, *_args: Any) -> Op:
        """The next invocation."""
        rng, s = self.rng, self.shape
        if rng.random() < s.read_fraction:
            return {"f": "read"}
        src, dst = rng.sample(range(s.accounts), 2)
        amount = rng.randint(1, s.max_transfer)
        return {"f": "transfer", "value": {"from": src, "to": dst, "amount": amount}}


def bank_workload(ctx: TestContext, *, client: Callable[[], Client], note: str = "") -> Workload:
    """The bank workload with ``client`` making one client per worker; ``note`` is added
    to the description (e.g. the isolation level)."""
    shape = bank_shape(ctx.options)

    def check(history: History, _ctx: TestContext | None = None) -> Result:
        return check_in_budget(
            "bank",
            history,
            ctx.options,
            lambda h, b: bank_checker.check(
                h, accounts=range(shape.accounts), total=shape.total, budget=b
            ),
        )

    return Workload(
        name="bank",
        client=client,
        generator=lambda c: BankGenerator(c.rng, shape),
        final_generator=lambda c: [{"f": "read"} for _ in range(c.concurrency)],
        check=check,
        description=(
            f"transfers of 1-{shape.max_transfer} between {shape.accounts} accounts holding "
            f"{shape.total} in all, and reads of every balance{note}; every read must add up "
            "to the total with no negative balance"
        ),
    )
