"""Published numbers of the EGAT paper (paper_tables.csv), shipped as package data."""
