"""The unique-ids workload: ask for ids; no id may be handed out twice.

Database-agnostic. Op: ``{"f": "generate"}`` -> ok, value: the id. Checked by
:mod:`checkers.collections.unique_ids` (Jepsen's unique-ids).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from checkers.collections import unique_ids as unique_ids_checker
from harness.api import Client, Op, TestContext, Workload
from harness.workloads import check_in_budget

__all__ = ["unique_ids_workload"]


def _generate(*_args: Any) -> Op:
    return {"f": "generate"}


def unique_ids_workload(
    ctx: TestContext, *, client: Callable[[], Client], source: str = ""
) -> Workload:
    """The unique-ids workload with ``client`` making one client per worker; ``source``
    says where ids come from (for the description)."""
    return Workload(
        name="unique-ids",
        client=client,
        generator=lambda c: _generate,
        check=lambda h, c: check_in_budget(
            "unique-ids", h, ctx.options, lambda h, b: unique_ids_checker.check(h, budget=b)
        ),
        description=f"generate ids{' from ' + source if source else ''}; no duplicates",
    )
