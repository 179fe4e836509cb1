"""Metrics with patient-bootstrap confidence intervals, model comparison, and figures."""
