"""The model file as AWS's XGBoost container of each framework version writes it, and readers for every older form."""
