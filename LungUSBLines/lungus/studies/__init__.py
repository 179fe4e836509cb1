"""Studies: questions about the whole pipeline answered by running it end to end on simulated data."""
