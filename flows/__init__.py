"""Prefect flows: daily_snapshot, monthly_close, backfill."""
