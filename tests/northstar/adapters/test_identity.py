"""Identity across systems: explicit links, self-named ids, merged aliases, domains, no link."""

from __future__ import annotations

import polars as pl

from northstar.adapters.base import PROBLEM
from northstar.adapters.identity import coverage, directory, link_accounts, resolve_links

# CRM: A1 (acme.com) and A2 (globex.com); A9 was merged into A1; A3 and A4 share initech.com,
# so that domain names no single account.
CRM = pl.LazyFrame({"account_id": ["A1", "A2", "A3", "A4"]})
CRM_LINKS = pl.LazyFrame(
    {
        "external_id": ["A1", "A2", "A9", "A3", "A4"],
        "account_hint": ["A1", "A2", "A1", "A3", "A4"],
        "domain": ["acme.com", "Globex.com", None, "initech.com", "initech.com"],
    }
)
EXPLICIT = pl.LazyFrame(
    {"system": ["stripe", "zendesk"], "external_id": ["cus_5", "cus_6"], "account_id": ["A2"] * 2}
)
# cus_1 names A1 itself; cus_2 names the merged A9 (-> A1); cus_3 has only a domain (globex ->
# A2, case and www. ignored); cus_4's domain is shared (no link); cus_5 is linked explicitly
# although it names A1; cus_6's explicit link is for another system; cus_7 names no CRM id.
STRIPE_LINKS = pl.LazyFrame(
    {
        "external_id": ["cus_1", "cus_2", "cus_3", "cus_4", "cus_5", "cus_6", "cus_7"],
        "account_hint": ["A1", "A9", None, None, "A1", None, "X99"],
        "domain": [None, None, "www.GLOBEX.com ", "initech.com", None, None, None],
    }
)


def _resolved() -> pl.DataFrame:
    found = directory(CRM, CRM_LINKS, EXPLICIT)
    return resolve_links("stripe", STRIPE_LINKS, found).collect().sort("external_id")


def test_each_rule_links_what_it_should_and_nothing_else() -> None:
    resolved = _resolved()
    assert resolved["account_id"].to_list() == ["A1", "A1", "A2", None, "A2", None, None]
    assert resolved["rule"].to_list() == [
        "hint", "hint", "domain", None, "account_links", None, None
    ]  # fmt: skip


def test_unlinked_rows_keep_their_row_and_say_why() -> None:
    invoices = pl.LazyFrame(
        {"invoice_id": ["in_1", "in_2", "in_3"], "account_id": ["cus_2", "cus_7", "cus_3"]}
    )
    linked = link_accounts("stripe", invoices, _resolved().lazy(), what="stripe customer")
    out = linked.collect()
    assert out["account_id"].to_list() == ["A1", "cus_7", "A2"]
    assert out[PROBLEM][0] is None
    assert out[PROBLEM][2] is None
    assert out[PROBLEM][1].startswith("stripe customer 'cus_7': no CRM account links to it")


def test_an_earlier_problem_is_kept() -> None:
    rows = pl.LazyFrame({"account_id": ["cus_7"], PROBLEM: ["test-mode object"]})
    out = link_accounts("stripe", rows, _resolved().lazy(), what="stripe customer").collect()
    assert out[PROBLEM].to_list() == ["test-mode object"]


def test_coverage_counts_objects_per_rule() -> None:
    counts = coverage(_resolved().lazy()).collect()
    assert dict(zip(counts["rule"], counts["objects"], strict=True)) == {
        "account_links": 1, "domain": 1, "hint": 2, None: 3
    }  # fmt: skip
