"""LungUSInferenceLib: the Qt-free side of the LungUSInference module."""

from LungUSInferenceLib.environment import TorchStatus, torch_status

__all__ = ["TorchStatus", "torch_status"]
