"""Pipeline steps: extract, validate, compute (pure KPI code in `tasks.kpis`), load."""
