"""Monthly budgets per API key: which limits a caller has, and whether it has spent them.

Settings give every client key the default limits (MONTHLY_TOKEN_BUDGET, MONTHLY_COST_BUDGET)
and any key its own (KEY_BUDGETS, by key id): a listed key has exactly its entry's limits.
Admin keys have only the limits KEY_BUDGETS gives them, so an operator trying the service is
not stopped by the clients' default. A month is a calendar month in UTC; the usage it is
checked against comes from `server.stores.usage_ledger.UsageLedger.month_spent`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.auth import Caller
from server.settings import Settings
from server.stores.usage_table import Amount


@dataclass(frozen=True)
class Budget:
    """A key's limits for one month; None is no limit of that kind."""

    tokens: int | None = None
    """Input plus output tokens."""
    usd: float | None = None
    """US dollars at the endpoints' prices."""

    @property
    def unlimited(self) -> bool:
        """No limit at all: nothing to check."""
        return self.tokens is None and self.usd is None

    def exceeded(self, spent: Amount) -> str | None:
        """What is spent, in words, once a limit is reached; None while within budget."""
        if self.tokens is not None and spent.tokens >= self.tokens:
            return f"{spent.tokens} of its {self.tokens} tokens"
        if self.usd is not None and spent.cost_usd >= self.usd:
            return f"${spent.cost_usd:.4f} of its ${self.usd:.2f}"
        return None


@dataclass(frozen=True)
class BudgetPolicy:
    """The budgets of the configured keys (empty: nobody has a budget)."""

    default: Budget = field(default_factory=Budget)
    """For client keys (and the anonymous caller of an open service) not in `per_key`."""
    per_key: dict[str, Budget] = field(default_factory=dict)
    """By key id."""

    @classmethod
    def from_settings(cls, settings: Settings) -> BudgetPolicy:
        """The defaults and KEY_BUDGETS (whose names the settings already made key ids)."""
        return cls(
            default=Budget(settings.monthly_token_budget, settings.monthly_cost_budget),
            per_key={
                key: Budget(budget.tokens, budget.usd)
                for key, budget in settings.key_budgets.items()
            },
        )

    @property
    def enabled(self) -> bool:
        """Some key has a limit (else no request reads usage)."""
        return not self.default.unlimited or any(not b.unlimited for b in self.per_key.values())

    def describe(self) -> str:
        """The limits in words, for the start's log (key ids only, never a key)."""

        def words(budget: Budget) -> str:
            parts = [f"{budget.tokens} tokens"] if budget.tokens is not None else []
            parts += [f"${budget.usd:g}"] if budget.usd is not None else []
            return " and ".join(parts) or "unlimited"

        listed = ", ".join(f"{key}: {words(b)}" for key, b in sorted(self.per_key.items()))
        return f"default {words(self.default)} a month" + (f"; {listed}" if listed else "")

    def for_caller(self, caller: Caller) -> Budget | None:
        """The caller's limits, or None when it has none (nothing to check)."""
        budget = self.per_key.get(caller.key_id)
        if budget is None and not caller.admin:
            budget = self.default
        return None if budget is None or budget.unlimited else budget
