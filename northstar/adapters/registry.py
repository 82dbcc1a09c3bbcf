"""The systems northstar has adapters for, by the name a source or `[systems]` table uses."""

from __future__ import annotations

import importlib

from northstar.adapters.base import Adapter

SYSTEMS = ("stripe", "hubspot", "zendesk", "amplitude", "segment")
CRM_TABLE = "crm/accounts"


def adapter_for(system: str) -> Adapter:
    """The adapter of `system` (one of SYSTEMS); a ValueError names the known ones otherwise."""
    if system not in SYSTEMS:
        raise ValueError(f"no adapter for system {system!r} (known: {', '.join(SYSTEMS)})")
    adapter: Adapter = importlib.import_module(f"northstar.adapters.{system}").ADAPTER
    return adapter
