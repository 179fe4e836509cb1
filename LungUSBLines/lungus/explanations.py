"""How lungus shows where a classifier saw B-lines: the explanation methods, defined once for
the engine, the command line and the Slicer panels (torch-free, so a panel lists them before
PyTorch is installed; the maps themselves are computed by lungus.models.explain,
lungus.models.lime and the runners).
"""

from __future__ import annotations

#: Grad-CAM at the layer each model names: works for every classifier model file.
GRADCAM = "gradcam"
#: LIME on superpixels of a frame: the model's forward only, so it works for every classifier
#: model file too (docs/explanations.md).
LIME = "lime"
#: The ``model.explain(x)`` output each map-reading method needs; only some architectures give it
#: (``cam``: exact class activation maps of a linear head; ``attention``: an attention pool's weights).
EXPLAIN_OUTPUTS: dict[str, str] = {"cam": "class_maps", "attention": "spatial_attention"}
#: What every classifier supports, whatever its architecture.
EVERY_MODEL_EXPLANATIONS: tuple[str, ...] = (GRADCAM, LIME)
EXPLAIN_METHODS: tuple[str, ...] = (*EVERY_MODEL_EXPLANATIONS, *EXPLAIN_OUTPUTS)

# LIME's settings the command line offers, torch-free (lungus.models.lime.LimeSettings checks them).
#: Superpixel methods whose region count can be asked for. Quickshift is left out: its count
#: follows no parameter closely (kernel size, distance and ratio all move it).
LIME_SEGMENTATIONS = ("slic", "felzenszwalb")
#: mean (the default): a hidden superpixel shows the frame's mean inside the fan, so nothing of
#: it is left; blur keeps a faint trace of a long bright streak such as a B-line, and on a small
#: frame CNN trained on simulated clips it put less weight on the B-lines (docs/explanations.md).
LIME_FILLS = ("mean", "blur")
