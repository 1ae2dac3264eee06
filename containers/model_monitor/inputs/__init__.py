"""What the analyzer reads: dataset files (CSV, JSON, Parquet) and captured inference records, as pyarrow chunks."""
