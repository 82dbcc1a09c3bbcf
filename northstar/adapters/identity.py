"""One account id across systems: external ids of billing, support and usage mapped to CRM ids.

Rules, in order, for a record of system S naming external account object X:
1. an explicit `crm/account_links` row (system S, external_id X) gives the account;
2. else the id X names itself (`account_hint`: a Stripe metadata key, a Zendesk organization's
   external_id), when that id is a CRM account or a merged CRM id's alias;
3. else the domain of X, when exactly one CRM account has that domain.
A CRM's merged ids resolve to the surviving account (the CRM adapter's LINKS rows whose
`external_id` differs from `account_hint`). A record that no rule links keeps its row and gets
the reason in PROBLEM, so validation quarantines it.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from northstar.adapters.base import PROBLEM

ACCOUNT_ID = "account_id"
LINK_TABLE = "crm/account_links"
"""The explicit link table: (system, external_id, account_id), one row per linked object."""
LINK_TABLE_COLUMNS = ("system", "external_id", "account_id")
_RESOLVED = "_resolved_account"


@dataclass(frozen=True)
class Directory:
    """What links are resolved against: CRM ids, merged-id aliases, CRM domains, explicit links."""

    accounts: pl.LazyFrame
    """account_id of every CRM account."""
    aliases: pl.LazyFrame
    """alias -> account_id for merged CRM ids (survivors map to themselves)."""
    domains: pl.LazyFrame
    """domain -> account_id, only domains held by exactly one account."""
    explicit: pl.LazyFrame
    """system, external_id -> account_id from `crm/account_links`."""


def _empty(*names: str) -> pl.LazyFrame:
    """A frame with String columns `names` and no rows."""
    return pl.LazyFrame(schema=dict.fromkeys(names, pl.String))


def _normal_domain(column: str) -> pl.Expr:
    """A domain compared case-insensitively, without `www.` and surrounding blanks."""
    return pl.col(column).str.strip_chars().str.to_lowercase().str.strip_prefix("www.")


def directory(
    accounts: pl.LazyFrame,
    crm_links: pl.LazyFrame | None = None,
    explicit: pl.LazyFrame | None = None,
) -> Directory:
    """The directory from CRM account ids, the CRM adapter's LINKS and `crm/account_links`."""
    ids = accounts.select(pl.col(ACCOUNT_ID).cast(pl.String)).unique()
    links = crm_links if crm_links is not None else _empty("external_id", "account_hint", "domain")
    merged = links.filter(pl.col("external_id") != pl.col("account_hint")).select(
        pl.col("external_id").alias("alias"), pl.col("account_hint").alias(ACCOUNT_ID)
    )
    aliases = pl.concat([ids.select(pl.col(ACCOUNT_ID).alias("alias"), ACCOUNT_ID), merged])
    owned = links.filter(pl.col("domain").is_not_null()).select(
        _normal_domain("domain").alias("domain"), pl.col("account_hint").alias(ACCOUNT_ID)
    )
    survivors = owned.join(aliases, left_on=ACCOUNT_ID, right_on="alias", how="inner")
    domains = (
        survivors.select("domain", pl.col(f"{ACCOUNT_ID}_right").alias(ACCOUNT_ID))
        .unique()
        .filter(pl.len().over("domain") == 1)
    )
    given = explicit if explicit is not None else _empty(*LINK_TABLE_COLUMNS)
    return Directory(ids, aliases.unique(subset="alias", keep="first"), domains, given)


def resolve_links(system: str, links: pl.LazyFrame, found: Directory) -> pl.LazyFrame:
    """external_id -> account_id (NULL when no rule links it) and the rule that linked it."""
    explicit = found.explicit.filter(pl.col("system") == system).select(
        "external_id", pl.col(ACCOUNT_ID).alias("_explicit")
    )
    hinted = found.aliases.select(pl.col("alias"), pl.col(ACCOUNT_ID).alias("_hinted"))
    by_domain = found.domains.select("domain", pl.col(ACCOUNT_ID).alias("_by_domain"))
    rule = (
        pl.when(pl.col("_explicit").is_not_null())
        .then(pl.lit("account_links"))
        .when(pl.col("_hinted").is_not_null())
        .then(pl.lit("hint"))
        .when(pl.col("_by_domain").is_not_null())
        .then(pl.lit("domain"))
    )
    return (
        links.unique(subset="external_id", keep="first")
        .with_columns(_normal_domain("domain").alias("domain"))
        .join(explicit, on="external_id", how="left")
        .join(hinted, left_on="account_hint", right_on="alias", how="left")
        .join(by_domain, on="domain", how="left")
        .select(
            "external_id",
            pl.coalesce("_explicit", "_hinted", "_by_domain").alias(ACCOUNT_ID),
            rule.alias("rule"),
        )
    )


def link_accounts(
    system: str, table: pl.LazyFrame, resolved: pl.LazyFrame, *, what: str
) -> pl.LazyFrame:
    """`table` with its external `account_id` replaced by the CRM id; unlinked rows keep the
    external id and get a PROBLEM naming it (`what` names the object: "stripe customer")."""
    mapped = resolved.select("external_id", pl.col(ACCOUNT_ID).alias(_RESOLVED))
    joined = table.join(
        mapped, left_on=ACCOUNT_ID, right_on="external_id", how="left", maintain_order="left"
    )
    unlinked = pl.col(_RESOLVED).is_null() & pl.col(ACCOUNT_ID).is_not_null()
    reason = pl.format(
        f"{what} '{{}}': no CRM account links to it (no {LINK_TABLE} row, no id it names "
        "that the CRM holds, no domain one CRM account has)",
        pl.col(ACCOUNT_ID),
    )
    previous = pl.col(PROBLEM) if PROBLEM in table.collect_schema() else pl.lit(None, pl.String)
    return joined.with_columns(
        pl.coalesce(_RESOLVED, ACCOUNT_ID).alias(ACCOUNT_ID),
        pl.coalesce(previous, pl.when(unlinked).then(reason)).alias(PROBLEM),
    ).drop(_RESOLVED)


def coverage(resolved: pl.LazyFrame) -> pl.LazyFrame:
    """Per rule, how many external objects it linked (rule NULL: unlinked)."""
    return resolved.group_by("rule").agg(pl.len().alias("objects")).sort("rule", nulls_last=True)
