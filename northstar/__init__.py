"""northstar: customer-success KPI pipeline."""

__version__ = "0.1.0"
