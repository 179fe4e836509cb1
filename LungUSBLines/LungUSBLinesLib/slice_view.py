"""What a slice view shows, computed headless by Slicer's own slice logic.

A Slicer slice view is drawn from a vtkMRMLSliceLogic: it reslices the background, foreground
and label volumes of the view's composite node into the view's plane, maps each through its
display node (window/level, threshold, colour table), and blends them with the layer
opacities. :class:`SliceView` runs that same logic on a scene without a window, so tests can
check the pixels a user would see (the clip upright, the mask in its class colour, the heat map
above its threshold only) and scripts can save them as images.

For scenes outside Slicer: it sets the slice node's size in pixels, which inside Slicer
belongs to the view widget.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import slicer
import vtk
from vtk.util import numpy_support

from lungus.errors import LungUSError


def slice_node(scene: Any, layout_name: str) -> Any | None:
    """The slice node of the view named ``layout_name`` ("Red", "Yellow", ...), or None."""
    nodes = scene.GetNodesByClass("vtkMRMLSliceNode")
    for i in range(nodes.GetNumberOfItems()):
        node = nodes.GetItemAsObject(i)
        if node.GetLayoutName() == layout_name:
            return node
    return None


class SliceView:
    """One slice view of ``scene`` (its slice node must exist: a layout logic makes it), rendered
    ``width`` x ``height`` pixels. Set its layers through :attr:`composite_node` or
    ``slicer.util.setSliceViewerLayers``-like code, call :meth:`fit`, then read :meth:`rgb`.
    Use as a context manager, or call :meth:`close`, before the scene is cleared."""

    def __init__(self, scene: Any, layout_name: str = "Red", *, width: int = 512, height: int = 512) -> None:
        node = slice_node(scene, layout_name)
        if node is None:
            raise LungUSError(f"the scene has no {layout_name} slice view (make its layout first)")
        if width < 1 or height < 1:
            raise ValueError(f"a slice view needs a positive size, got {width}x{height}")
        self.width, self.height = int(width), int(height)
        self.logic = slicer.vtkMRMLSliceLogic()
        self.logic.SetMRMLScene(scene)
        self.logic.SetSliceNode(node)
        node.SetDimensions(self.width, self.height, 1)

    @property
    def slice_node(self) -> Any:
        return self.logic.GetSliceNode()

    @property
    def composite_node(self) -> Any:
        """The view's vtkMRMLSliceCompositeNode: which volumes it shows, with what opacity."""
        return self.logic.GetSliceCompositeNode()

    def fit(self) -> None:
        """Fit the field of view to the background volume, as Slicer's "reset view" does."""
        self.logic.FitSliceToBackground(self.width, self.height)

    def rgb(self) -> np.ndarray:
        """uint8 (height, width, 3): the view's pixels, row 0 at the top of the view.

        The blended layers' colours; where no layer has an image the view is black, as on screen.
        """
        self.logic.UpdatePipeline()
        connection = self.logic.GetImageDataConnection()
        if connection is None:
            return np.zeros((self.height, self.width, 3), dtype=np.uint8)
        producer = connection.GetProducer()
        producer.Update()
        image = producer.GetOutputDataObject(connection.GetIndex())
        columns, rows, _ = image.GetDimensions()
        rgba = numpy_support.vtk_to_numpy(image.GetPointData().GetScalars()).reshape(rows, columns, -1)
        # VTK images start at the bottom row; the alpha channel is opacity for the blend only.
        return np.ascontiguousarray(rgba[::-1, :, :3])

    def view_pixels(self, volume: Any, rows: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(view rows, view columns) of the centres of ``volume``'s voxels (``rows``, ``cols``) of
        slice 0: where :meth:`rgb` shows them, through the volume's and the view's geometry."""
        ijk_to_ras = vtk.vtkMatrix4x4()
        volume.GetIJKToRASMatrix(ijk_to_ras)
        ras_to_xy = vtk.vtkMatrix4x4()
        vtk.vtkMatrix4x4.Invert(self.slice_node.GetXYToRAS(), ras_to_xy)
        ijk_to_xy = vtk.vtkMatrix4x4()
        vtk.vtkMatrix4x4.Multiply4x4(ras_to_xy, ijk_to_ras, ijk_to_xy)
        matrix = np.array([[ijk_to_xy.GetElement(i, j) for j in range(4)] for i in range(4)])
        cols, rows = np.broadcast_arrays(np.asarray(cols, dtype=float), np.asarray(rows, dtype=float))
        ijk = np.stack([cols, rows, np.zeros_like(cols), np.ones_like(cols)])
        x, y = (matrix @ ijk.reshape(4, -1))[:2]
        view_rows = self.height - 1 - np.rint(y).astype(int)  # XY y runs up from the bottom row
        return view_rows.reshape(rows.shape), np.rint(x).astype(int).reshape(cols.shape)

    def close(self) -> None:
        self.logic.SetMRMLScene(None)

    def __enter__(self) -> SliceView:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
