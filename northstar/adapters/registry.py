"""The systems northstar has adapters for, by the name a source or `[systems]` table uses."""

from __future__ import annotations

import importlib

from northstar.adapters.base import Adapter

KNOWN_SYSTEMS = ("stripe", "hubspot", "zendesk", "amplitude", "segment")
"""Names a `fivetran+` source spec may give as systems (other query parameters stay on the URL)."""
AVAILABLE: tuple[str, ...] = ("stripe", "zendesk")
"""Systems with an adapter in this release: each a module `northstar.adapters.<name>` with an
`ADAPTER`."""
CRM_TABLE = "crm/accounts"


def adapter_for(system: str) -> Adapter:
    """The adapter of `system`; a ValueError naming the available ones when there is none."""
    if system not in AVAILABLE:
        known = ", ".join(AVAILABLE) or "none yet; map its tables with [[mappings]]"
        raise ValueError(f"no adapter for system {system!r} (available: {known})")
    adapter: Adapter = importlib.import_module(f"northstar.adapters.{system}").ADAPTER
    return adapter
