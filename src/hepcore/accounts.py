"""Accounts: the people and teams that own keys and uploads.

An account has a unique ``name``, a ``plan`` (``free`` or ``prime``), a
``status`` and free-form per-service ``settings`` (limits such as
``max_file_size``, ``allowed_types`` or ``quota_tier``) that services read
with their own defaults.
"""

from __future__ import annotations

import builtins
import json
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .clock import ALNUM, Clock, random_string, system_clock
from .db import Database
from .errors import ConfigError, NotFoundError

PLANS = ("free", "prime")
ACCOUNT_STATUSES = ("active", "suspended", "banned", "unapproved")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

PlanChange = Callable[[str, str, str], None]
"""``(account_id, old_plan, new_plan)``, called inside the plan change's transaction."""


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    email: str | None
    plan: str
    status: str
    created_at: float
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.status == "active"

    def setting(self, name: str, default: Any = None) -> Any:
        return self.settings.get(name, default)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Account:
        return cls(
            id=row["id"], name=row["name"], email=row["email"], plan=row["plan"],
            status=row["status"], created_at=row["created_at"],
            settings=json.loads(row["settings"] or "{}"),
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id, "name": self.name, "email": self.email, "plan": self.plan,
            "status": self.status, "created_at": self.created_at, "settings": self.settings,
        }


class AccountStore:
    """Create, find and change accounts in the core database."""

    def __init__(self, db: Database, clock: Clock = system_clock) -> None:
        self.db = db
        self.clock = clock
        self._plan_listeners: builtins.list[PlanChange] = []

    def on_plan_change(self, listener: PlanChange) -> None:
        """Call ``listener(account_id, old_plan, new_plan)`` whenever :meth:`update`
        changes an account's plan, inside the same write transaction: writes it
        makes through the runtime's database join that transaction, and an
        exception it raises rolls the plan change back and reaches the caller.
        Services register at start-up (the paste service gives a downgraded
        account's pastes their Free expiry this way)."""
        self._plan_listeners.append(listener)

    def create(self, name: str, *, plan: str = "free", email: str | None = None,
               status: str = "active", settings: dict[str, Any] | None = None) -> Account:
        """Create an account; raises :class:`ConfigError` for a bad or taken name."""
        if not NAME_RE.fullmatch(name):
            raise ConfigError(
                "account name must be 1-64 characters of letters, digits, '.', '_' or '-'"
                " and start with a letter or digit"
            )
        _check_choice("plan", plan, PLANS)
        _check_choice("status", status, ACCOUNT_STATUSES)
        account_id = "acc_" + random_string(12, ALNUM)
        try:
            with self.db.write() as conn:
                conn.execute(
                    "INSERT INTO accounts (id, name, email, plan, status, settings, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (account_id, name, email, plan, status, json.dumps(settings or {}),
                     self.clock()),
                )
        except sqlite3.IntegrityError:
            raise ConfigError(f"an account named {name!r} already exists") from None
        return self.get(account_id)

    def get(self, account_id: str) -> Account:
        row = self.db.one("SELECT * FROM accounts WHERE id = ?", (account_id,))
        if row is None:
            raise NotFoundError(f"no account with id {account_id!r}")
        return Account.from_row(row)

    def by_name(self, name: str) -> Account:
        row = self.db.one("SELECT * FROM accounts WHERE name = ?", (name,))
        if row is None:
            raise NotFoundError(f"no account named {name!r}")
        return Account.from_row(row)

    def list(self) -> list[Account]:
        return [Account.from_row(r) for r in self.db.all("SELECT * FROM accounts ORDER BY name")]

    def update(self, account_id: str, *, plan: str | None = None, status: str | None = None,
               email: str | None = None, settings: dict[str, Any] | None = None,
               unset: builtins.list[str] | None = None) -> Account:
        """Change fields; ``settings`` are merged into the existing ones, ``unset`` removed.
        A changed plan is announced to the :meth:`on_plan_change` listeners."""
        if plan is not None:
            _check_choice("plan", plan, PLANS)
        if status is not None:
            _check_choice("status", status, ACCOUNT_STATUSES)
        with self.db.write() as conn:
            account = self.get(account_id)
            merged = dict(account.settings)
            merged.update(settings or {})
            for key in unset or []:
                merged.pop(key, None)
            conn.execute(
                "UPDATE accounts SET plan = ?, status = ?, email = ?, settings = ? WHERE id = ?",
                (plan or account.plan, status or account.status,
                 email if email is not None else account.email, json.dumps(merged), account_id),
            )
            if plan is not None and plan != account.plan:
                for listener in self._plan_listeners:
                    listener(account_id, account.plan, plan)
        return self.get(account_id)


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{what} must be one of: {', '.join(choices)} (got {value!r})")
