"""lungus: the B-line engine of the LungUS B-lines Slicer extension.

Pure Python and PyTorch; nothing below this package imports slicer, qt or vtk.
Flow: ``io`` (clips, fan) -> ``data`` / ``sim`` -> ``models`` -> ``train`` /
``evaluate`` -> ``infer``.
"""

from lungus.errors import LungUSError

__version__ = "0.1.0"

__all__ = ["LungUSError", "__version__"]
