"""Pure KPI code: polars LazyFrames in, long-format KPI rows out. No IO here."""
