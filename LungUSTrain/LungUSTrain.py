"""LungUSTrain: export clips reviewed or labeled in Slicer, for training outside it.

Thin Qt layer over LungUSTrainLib (Qt-free, tested headless): widgets -> *Lib -> lungus.
"""

import logging
import os

import qt
import slicer
from LungUSBLinesLib import dependencies
from LungUSTrainLib.export import EXPORT_FORMATS
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

#
# LungUSTrain
#


class LungUSTrain(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "LungUS Train"
        self.parent.categories = ["Ultrasound"]
        self.parent.dependencies = ["LungUSBLines"]
        self.parent.contributors = ["LungUS B-lines contributors"]
        self.parent.helpText = """
Export the lung-ultrasound clips in the scene (sequences) as files the `lungus` engine reads,
to train B-line models outside Slicer with `lungus train`.
See the <a href="https://github.com/lungus-blines/SlicerLungUSBLines">extension documentation</a>.
"""
        self.parent.acknowledgementText = """
Developed as open source by the LungUS B-lines contributors.
"""


#
# LungUSTrainWidget
#


class LungUSTrainWidget(ScriptedLoadableModuleWidget):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LungUSTrain.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LungUSTrainLogic()

        for suffix, title in EXPORT_FORMATS.items():
            self.ui.formatSelector.addItem(title, suffix)
        self.ui.outputFolderButton.directory = qt.QDir.homePath()
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.engineLabel.text = f"Engine: lungus {dependencies.engine_version()}"

    def onExport(self):
        from LungUSBLines import ensurePythonRequirements

        sequences = self.ui.sequencesSelector.checkedNodes()
        if not sequences:
            slicer.util.errorDisplay("Check at least one clip to export.")
            return
        if not ensurePythonRequirements():
            return
        folder = self.ui.outputFolderButton.directory
        suffix = self.ui.formatSelector.currentData
        with slicer.util.tryWithErrorDisplay("Export failed.", waitCursor=True):
            results = self.logic.exportSequences(sequences, folder, suffix)
        lines = [
            f"{result.sequence_name}: {result.path}"
            if result.path
            else f"{result.sequence_name}: FAILED, {result.error}"
            for result in results
        ]
        failed = sum(result.path is None for result in results)
        lines.append(f"{len(results) - failed} exported, {failed} failed, to {folder}")
        self.ui.exportLogText.plainText = "\n".join(lines)


#
# LungUSTrainLogic
#


class LungUSTrainLogic(ScriptedLoadableModuleLogic):
    """Thin wrapper over LungUSTrainLib; usable from the Python console:

    logic = slicer.util.getModuleLogic("LungUSTrain")
    logic.exportSequences(slicer.util.getNodesByClass("vtkMRMLSequenceNode"), "/data/export", ".seq.nrrd")
    """

    def exportSequences(self, sequenceNodes, folder, suffix=".seq.nrrd", progressCallback=None):
        """Write each sequence as <folder>/<name><suffix>; returns one ExportResult per sequence."""
        from LungUSTrainLib.export import export_sequences

        results = export_sequences(sequenceNodes, folder, suffix, progress=progressCallback)
        for result in results:
            if result.error:
                logging.warning(f"LungUS Train: {result.sequence_name} not exported: {result.error}")
        return results


#
# LungUSTrainTest
#


class LungUSTrainTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer; the same export is tested headless in the repository's Testing/bridge."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_ExportedClipReadsBack()

    def test_ExportedClipReadsBack(self):
        import numpy as np
        from LungUSBLinesLib.sequences import frames_to_sequence

        from LungUSBLines import ensurePythonRequirements

        self.assertTrue(ensurePythonRequirements())
        from lungus.io import read_clip

        self.delayDisplay("Export a sequence and read it back with the engine")
        frames = (np.arange(3 * 20 * 30).reshape(3, 20, 30) % 251).astype(np.uint8)
        sequence = frames_to_sequence(slicer.mrmlScene, frames, "LungUSTrainTest", fps=15.0)
        folder = slicer.util.tempDirectory("LungUSTrainTest")
        results = LungUSTrainLogic().exportSequences([sequence], folder, ".seq.nrrd")
        self.assertIsNone(results[0].error)
        clip = read_clip(results[0].path)
        np.testing.assert_array_equal(clip.frames, frames)
        self.assertAlmostEqual(clip.fps, 15.0, places=3)
        self.assertEqual(os.path.basename(results[0].path), "LungUSTrainTest.seq.nrrd")
        self.delayDisplay("Test passed")
