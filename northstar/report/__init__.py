"""What people look at: the run summary (Prefect artifacts) and the HTML report."""
