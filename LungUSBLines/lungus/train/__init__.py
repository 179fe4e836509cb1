"""The external training loop: one readable loop for classifiers and segmenters, torchrun-ready."""
