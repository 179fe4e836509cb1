"""LungUSInferenceLib: the Qt-free side of the LungUSInference module.

- batch runs as a `lungus infer` subprocess (BatchRequest, start_batch, load_batch_results);
- the Python-console API (analyse, analyse_into_scene, run_batch, review_queue; see .console);
- where inference can run (torch_status).

Names are imported on first use, so ``import LungUSInferenceLib`` stays light.
"""

from __future__ import annotations

from lungus.lazy import lazy_exports

_EXPORTS = {
    "BatchRequest": "batch",
    "BatchResults": "batch",
    "ReviewQueueTable": "batch",
    "load_batch_results": "batch",
    "make_review_queue": "batch",
    "parse_progress_line": "batch",
    "results_written": "batch",
    "start_batch": "batch",
    "analyse": "console",
    "analyse_into_scene": "console",
    "run_batch": "console",
    "review_queue": "console",
    "TorchStatus": "environment",
    "torch_status": "environment",
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
