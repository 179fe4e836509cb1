"""Labeled collections: label schemes, manifests, crowd-label aggregation, training data."""
