"""AWS Lambda as far as pipelines use it: functions and layers, run as local Python processes (docs/pipelines.md)."""
