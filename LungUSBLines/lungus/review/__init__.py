"""Review: what a person says about a model's output, kept as training data (docs/review.md)."""
