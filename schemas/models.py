"""The pandera model of every contract table, keyed by contract table name."""

from __future__ import annotations

import pandera.polars as pa

from schemas.billing import FxRates, Invoices, Subscriptions
from schemas.crm import Accounts, Costs, Referrals, Surveys
from schemas.fulfillment import Orders
from schemas.helpdesk import Tickets
from schemas.product import Usage, ValueEvents, WebSessions

MODELS: dict[str, type[pa.DataFrameModel]] = {
    "crm/accounts": Accounts,
    "crm/surveys": Surveys,
    "crm/costs": Costs,
    "crm/referrals": Referrals,
    "billing/subscriptions": Subscriptions,
    "billing/invoices": Invoices,
    "billing/fx_rates": FxRates,
    "helpdesk/tickets": Tickets,
    "product/usage": Usage,
    "product/web_sessions": WebSessions,
    "product/value_events": ValueEvents,
    "fulfillment/orders": Orders,
}
