"""The pandera model of every contract table, keyed by contract table name."""

from __future__ import annotations

import pandera.polars as pa

from schemas.billing import FxRates, Invoices, Subscriptions
from schemas.crm import Accounts, Costs, Surveys
from schemas.helpdesk import Tickets
from schemas.product import Usage

MODELS: dict[str, type[pa.DataFrameModel]] = {
    "crm/accounts": Accounts,
    "crm/surveys": Surveys,
    "crm/costs": Costs,
    "billing/subscriptions": Subscriptions,
    "billing/invoices": Invoices,
    "billing/fx_rates": FxRates,
    "helpdesk/tickets": Tickets,
    "product/usage": Usage,
}
