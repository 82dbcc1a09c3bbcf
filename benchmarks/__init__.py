"""Benchmarks: northstar against a DuckDB SQL reference and the scan floor (docs/benchmarks.md)."""
