"""Monthly budgets: defaults for client keys, KEY_BUDGETS per key, admin keys exempt."""

from __future__ import annotations

import pytest

from server.auth import ANONYMOUS, Caller, digest
from server.stores.budgets import Budget, BudgetPolicy
from server.stores.usage_table import Amount
from tests.conftest import SettingsFactory

KEY = digest("sk-a")[:16]
OTHER = digest("sk-b")[:16]


def test_no_budget_is_configured_by_default(make_settings: SettingsFactory) -> None:
    policy = BudgetPolicy.from_settings(make_settings())
    assert not policy.enabled
    assert policy.for_caller(Caller(KEY)) is None


def test_the_defaults_apply_to_client_keys_and_not_to_admin_keys(
    make_settings: SettingsFactory,
) -> None:
    policy = BudgetPolicy.from_settings(
        make_settings(monthly_token_budget=1000, monthly_cost_budget=2.5)
    )
    assert policy.enabled
    assert policy.for_caller(Caller(KEY)) == Budget(tokens=1000, usd=2.5)
    assert policy.for_caller(Caller(ANONYMOUS)) == Budget(tokens=1000, usd=2.5)
    assert policy.for_caller(Caller(OTHER, admin=True)) is None


def test_a_listed_key_has_exactly_its_entry(make_settings: SettingsFactory) -> None:
    policy = BudgetPolicy.from_settings(
        make_settings(
            monthly_token_budget=1000,
            key_budgets={
                digest("sk-a"): {"usd": 1.0},  # a full digest names the key too
                OTHER: {},  # unlimited, whatever the default
            },
        )
    )
    assert policy.for_caller(Caller(KEY)) == Budget(usd=1.0)
    assert policy.for_caller(Caller(OTHER)) is None
    assert policy.for_caller(Caller(OTHER, admin=True)) is None
    assert policy.for_caller(Caller(KEY, admin=True)) == Budget(usd=1.0)
    assert "default 1000 tokens a month" in policy.describe()


@pytest.mark.parametrize(
    "budgets",
    [
        {"sk-a": {"tokens": 1}},  # a key in clear never belongs in the settings
        {KEY: {"tokens": -1}},
        {KEY: {"dollars": 1}},
        {KEY: {"tokens": 1}, digest("sk-a"): {"tokens": 2}},
    ],
)
def test_bad_key_budgets_are_refused_at_start(
    make_settings: SettingsFactory, budgets: dict[str, object]
) -> None:
    with pytest.raises(ValueError, match="key_budgets"):
        make_settings(key_budgets=budgets)


def test_a_budget_is_spent_when_a_limit_is_reached() -> None:
    budget = Budget(tokens=100, usd=0.5)
    assert budget.exceeded(Amount(3, 60, 39, 0.49)) is None
    assert budget.exceeded(Amount(3, 60, 40, 0.0)) == "100 of its 100 tokens"
    assert budget.exceeded(Amount(1, 1, 1, 0.5)) == "$0.5000 of its $0.50"
