"""The default pipeline: German credit features -> XGBoost tuning (or training) -> evaluation -> gate -> register."""
