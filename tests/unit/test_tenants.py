"""Tenant policy values, their encoding, and the share figures (pure logic)."""

from __future__ import annotations

import math

import pytest

from fairque.core.tenants import (
    TenantFigures,
    TenantPolicy,
    TenantPolicyError,
    encode_policy,
    jain_index,
    parse_rate,
    share_out,
    tenant_figures,
    windowed,
)


@pytest.mark.parametrize(
    ("text", "per_second"),
    [("20/s", 20.0), ("120/m", 2.0), ("36/h", 0.01), (5, 5.0), (" 2.5 / s ", 2.5), ("7", 7.0)],
)
def test_rates_are_read_per_second(text: object, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("value", ["unlimited", math.inf, "none"])
def test_unlimited_rate(value: object) -> None:
    assert parse_rate(value) is None
    assert encode_policy(rate=value) == {"rate": "-1"}


@pytest.mark.parametrize("value", ["0/s", "-1/s", "fast", "10/d", True, [], math.nan])
def test_bad_rates(value: object) -> None:
    with pytest.raises(TenantPolicyError, match="rate"):
        parse_rate(value)


@pytest.mark.parametrize("value", [2.5, "two", True, "inf"])
def test_a_bad_burst_is_never_told_it_may_be_unlimited(value: object) -> None:
    with pytest.raises(TenantPolicyError, match="burst") as refused:
        encode_policy(burst=value)
    assert "unlimited" not in str(refused.value).replace("(not unlimited)", "")


def test_encoding_and_resolving_round_trip() -> None:
    fields = encode_policy(weight=3, max_running="4", rate="60/m", burst=2)
    assert fields == {"weight": "3.0", "max_running": "4", "rate": "1.0", "burst": "2"}
    policy = TenantPolicy.resolve("u", fields, {"max_running": "9"})
    assert (policy.weight, policy.max_running, policy.rate, policy.burst) == (3.0, 4, 1.0, 2)
    inherited = TenantPolicy.resolve("v", {}, {"max_running": "9"})
    assert inherited.max_running == 9 and inherited.own == ()
    lifted = TenantPolicy.resolve("w", {"max_running": "-1"}, {"max_running": "9"})
    assert lifted.max_running is None and lifted.own == ("max_running",)


def test_the_sliding_minute_weights_the_previous_bucket() -> None:
    minute = 1000.0
    start = minute * 60_000
    assert windowed(10, 30, start, minute) == 40
    assert windowed(10, 30, start + 30_000, minute) == pytest.approx(25)
    assert windowed(10, 30, start + 60_000 + 15_000, minute) == pytest.approx(7.5)
    assert windowed(10, 30, start + 200_000, minute) == 0
    assert windowed(10, 30, start, None) == 0


def test_tokens_follow_the_gcra_state() -> None:
    policy = {"rate": "10", "burst": "5"}
    full = tenant_figures("u", policy, {}, {}, 1_000_000)
    assert full.tokens == 5
    spent = tenant_figures("u", {**policy, "tat": "1000500"}, {}, {}, 1_000_000)
    assert spent.tokens == pytest.approx(0.0)  # 5 starts in the last 500 ms of a burst of 5
    assert tenant_figures("u", {}, {}, {}, 0).tokens is None


def test_shares_and_jains_index() -> None:
    def figures(user: str, weight: float, served: float) -> TenantFigures:
        return TenantFigures(TenantPolicy(user, weight=weight), served_last_minute=served)

    fair = [figures("a", 1, 10), figures("b", 3, 30), figures("idle", 5, 0)]
    assert share_out(fair, by_time=False) == pytest.approx(1.0)
    assert [f.fair_share for f in fair] == [0.25, 0.75, 0.0]
    unfair = [figures("a", 1, 30), figures("b", 1, 10)]
    assert share_out(unfair, by_time=False) == pytest.approx(0.8)
    assert share_out([figures("a", 1, 0)], by_time=False) is None
    assert jain_index([]) == 1.0
