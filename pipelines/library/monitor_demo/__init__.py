"""The Model Monitor demo on the credit-risk endpoint: ``monitor_data`` (the baseline and traffic from the pipeline's
splits), ``monitor_steps`` (baseline, traffic, one-time schedules) and ``monitor_report`` (terminal and report.md)."""
