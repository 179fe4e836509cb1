"""Per-frame deep features of trained frame encoders, cached per clip, frame and backbone
(docs/frame-fusion.md#features): what `lungus features` writes and `lungus train --model fusion` fuses.

- :mod:`~lungus.features.backbones`: a backbone from a lungus model file or a torchvision name;
- :mod:`~lungus.features.store`: the feature folder, its keys and the batch extraction.
"""
