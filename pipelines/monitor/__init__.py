"""``make monitor``: Model Monitor on the endpoint ``make deploy`` created (baseline, traffic, drift, report)."""
