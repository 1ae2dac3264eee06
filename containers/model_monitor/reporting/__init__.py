"""What a run leaves besides the JSON files: the drift report (plots and HTML) and the CloudWatch metric records."""
