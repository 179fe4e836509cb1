"""How lungus shows where a classifier saw B-lines: the explanation methods, defined once for
the engine, the command line and the Slicer panels (torch-free, so a panel lists them before
PyTorch is installed; the maps themselves are computed by lungus.models.explain and the runners).
"""

from __future__ import annotations

#: Grad-CAM at the layer each model names: works for every classifier model file.
GRADCAM = "gradcam"
#: The ``model.explain(x)`` output each map-reading method needs; only some architectures give it
#: (``cam``: exact class activation maps of a linear head; ``attention``: an attention pool's weights).
EXPLAIN_OUTPUTS: dict[str, str] = {"cam": "class_maps", "attention": "spatial_attention"}
EXPLAIN_METHODS: tuple[str, ...] = (GRADCAM, *EXPLAIN_OUTPUTS)
#: What every classifier supports, whatever its architecture.
EVERY_MODEL_EXPLANATIONS: tuple[str, ...] = (GRADCAM,)
