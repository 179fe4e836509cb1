"""LungUS B-lines: review lung-ultrasound clips in 3D Slicer.

The widget is a thin Qt layer. Everything it does goes through LungUSBLinesLib (the
Qt-free bridge, tested headless under slicer-core), which uses the `lungus` engine:
widgets -> LungUSBLinesLib -> lungus.
"""

import logging
import os
import sys
import traceback

import qt
import slicer

# Light on purpose: it only inspects which packages are installed, so the module loads
# in a fresh Slicer before the engine's own requirements are there.
from LungUSBLinesLib import dependencies
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

#
# LungUSBLines
#


class LungUSBLines(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "LungUS B-lines"
        self.parent.categories = ["Ultrasound"]
        self.parent.dependencies = ["Sequences"]
        self.parent.contributors = ["LungUS B-lines contributors"]
        self.parent.helpText = """
Review lung-ultrasound clips: open a video, ultrasound DICOM, NRRD / .seq.nrrd, .npy/.npz file
or a folder of frames; it is loaded as a sequence you can play, with what the reader found:
frames, frame rate, pixel spacing and the ultrasound fan.
See the <a href="https://github.com/lungus-blines/SlicerLungUSBLines">extension documentation</a>.
"""
        self.parent.acknowledgementText = """
Developed as open source by the LungUS B-lines contributors. Clips are read by the `lungus`
engine that ships inside this module; sequences play through Slicer's Sequences module.
"""


def ensurePythonRequirements(withTorch=False):
    """Install what the engine needs and Slicer's Python lacks, after the user agrees.

    torch comes through the PyTorch extension (SlicerPyTorch), which picks the build that
    matches the computer's GPU; the other packages through pip. Returns True when all
    requirements are met.
    """
    missing = dependencies.missing_requirements()
    if missing:
        listing = "\n".join(f"  {item.describe()}" for item in missing)
        if not slicer.util.confirmOkCancelDisplay(
            "LungUS B-lines needs these Python packages, which Slicer's Python lacks:\n\n"
            f"{listing}\n\nInstall them now with pip? This needs an internet connection "
            "and may take a few minutes.",
            "LungUS B-lines: install Python packages",
        ):
            return False
        with slicer.util.tryWithErrorDisplay("Installing Python packages failed.", waitCursor=True):
            slicer.util.pip_install([item.requirement for item in missing])
        # An upgraded package that Python has already imported stays old until a restart.
        if any(item.installed is not None and item.import_name in sys.modules for item in missing):
            if slicer.util.confirmOkCancelDisplay(
                "Updated Python packages take effect after Slicer restarts. Restart now?",
                "LungUS B-lines: restart needed",
            ):
                slicer.util.restart()
            return False
    if withTorch:
        return ensureTorch()
    return True


def ensureTorch():
    """torch through the PyTorch extension, installed with the user's confirmation."""
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        slicer.util.errorDisplay(
            "This module needs the PyTorch extension. Install 'PyTorch' from the Extensions Manager, "
            "restart Slicer, and try again."
        )
        return False
    torchLogic = PyTorchUtils.PyTorchUtilsLogic()
    if torchLogic.torchInstalled():
        return True
    torchRequirement = dependencies.TORCH_REQUIREMENTS["torch"].removeprefix("torch")
    torchvisionRequirement = dependencies.TORCH_REQUIREMENTS["torchvision"].removeprefix("torchvision")
    torch = torchLogic.installTorch(
        askConfirmation=True,
        torchVersionRequirement=torchRequirement,
        torchvisionVersionRequirement=torchvisionRequirement,
    )
    return torch is not None


#
# LungUSBLinesWidget
#


class LungUSBLinesWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LungUSBLines.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LungUSBLinesLogic()

        # Play and seek controls of the selected clip's browser (the Sequences toolbar has the same).
        self.playWidget = slicer.qMRMLSequenceBrowserPlayWidget()
        self.seekWidget = slicer.qMRMLSequenceBrowserSeekWidget()
        for widget in (self.playWidget, self.seekWidget):
            widget.setMRMLScene(slicer.mrmlScene)
            self.ui.playbackWidget.layout().addWidget(widget)

        self.ui.openFileButton.connect("clicked(bool)", self.onOpenFile)
        self.ui.openFolderButton.connect("clicked(bool)", self.onOpenFolder)
        self.ui.clipSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onClipSelected)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)

        self.ui.engineLabel.text = f"Engine: lungus {dependencies.engine_version()}"
        self.updateClipPanel(self.ui.clipSelector.currentNode())

    def cleanup(self):
        self.removeObservers()

    def onSceneEndClose(self, caller, event):
        self.updateClipPanel(None)

    def onOpenFile(self):
        if not ensurePythonRequirements():
            return
        path = qt.QFileDialog.getOpenFileName(
            slicer.util.mainWindow(),
            "Open a lung-ultrasound clip",
            self.logic.lastFolder(),
            self.logic.clipFileFilter(),
        )
        if path:
            self.openClip(path)

    def onOpenFolder(self):
        if not ensurePythonRequirements():
            return
        path = qt.QFileDialog.getExistingDirectory(
            slicer.util.mainWindow(), "Open a folder of frame images", self.logic.lastFolder()
        )
        if path:
            self.openClip(path)

    def openClip(self, path):
        progressDialog = slicer.util.createProgressDialog(
            labelText=f"Opening {os.path.basename(path)}...", maximum=100, windowTitle="LungUS B-lines"
        )

        def showProgress(fraction):
            progressDialog.value = int(100 * fraction)
            slicer.app.processEvents()

        try:
            loaded = self.logic.loadClip(path, progressCallback=showProgress)
        except Exception as error:
            # A LungUSError says what is wrong with the file; anything else also gets a traceback.
            slicer.util.errorDisplay(
                f"Could not open the clip.\n\n{error}", detailedText=traceback.format_exc()
            )
            return
        finally:
            progressDialog.close()
        self.ui.clipSelector.setCurrentNode(loaded.nodes.browser)

    def onClipSelected(self, browserNode):
        self.updateClipPanel(browserNode)
        if browserNode is not None:
            self.logic.showInViews(browserNode)

    def updateClipPanel(self, browserNode):
        """Point the play controls and the information box at the clip of ``browserNode``."""
        self.playWidget.setMRMLSequenceBrowserNode(browserNode)
        self.seekWidget.setMRMLSequenceBrowserNode(browserNode)
        sequenceNode = browserNode.GetMasterSequenceNode() if browserNode else None
        if sequenceNode is None:
            self.ui.clipInfoText.plainText = (
                "Open a clip to see its frames, frame rate, pixel spacing and ultrasound fan."
            )
            return
        self.ui.clipInfoText.plainText = self.logic.clipDescription(sequenceNode)


#
# LungUSBLinesLogic
#


class LungUSBLinesLogic(ScriptedLoadableModuleLogic):
    """Thin wrapper over LungUSBLinesLib for slicer.mrmlScene; usable from the Python console:

    logic = slicer.util.getModuleLogic("LungUSBLines")
    loaded = logic.loadClip("/path/to/clip.mp4")   # loaded.clip (engine Clip), loaded.nodes
    """

    LAST_FOLDER_SETTING = "LungUSBLines/LastFolder"

    def loadClip(self, path, progressCallback=None):
        """Read a clip with the engine and add it to the scene as a sequence with its browser."""
        from LungUSBLinesLib.clips import load_clip

        logging.info(f"LungUS B-lines: opening {path}")
        loaded = load_clip(slicer.mrmlScene, path, progress=progressCallback)
        qt.QSettings().setValue(self.LAST_FOLDER_SETTING, os.path.dirname(os.path.abspath(path)))
        return loaded

    def lastFolder(self):
        return str(qt.QSettings().value(self.LAST_FOLDER_SETTING, ""))

    def clipFileFilter(self):
        from LungUSBLinesLib.clips import clip_file_name_filter

        return clip_file_name_filter()

    def clipDescription(self, sequenceNode):
        from LungUSBLinesLib.clips import describe_clip, sequence_summary

        return describe_clip(sequence_summary(sequenceNode))

    def showInViews(self, browserNode):
        """Show the clip's current frame in the red slice view, axial, fitted; activate the toolbar."""
        proxyNode = browserNode.GetProxyNode(browserNode.GetMasterSequenceNode())
        if proxyNode is None or not proxyNode.IsA("vtkMRMLVolumeNode"):
            return
        layoutManager = slicer.app.layoutManager()
        if layoutManager is not None:
            layoutManager.setLayout(slicer.vtkMRMLLayoutNode.SlicerLayoutOneUpRedSliceView)
            layoutManager.sliceWidget("Red").mrmlSliceNode().SetOrientationToAxial()
        slicer.util.setSliceViewerLayers(background=proxyNode, fit=True)
        slicer.modules.sequences.setToolBarActiveBrowserNode(browserNode)


#
# LungUSBLinesTest
#


class LungUSBLinesTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer (Reload and Test, or ctest). The same bridge is tested headless
    under pytest in the repository's Testing/bridge; these check it against the full
    application: its scene, its IO plugins and its views."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.assertTrue(ensurePythonRequirements(), "the engine's Python packages are not installed")
        self.setUp()
        self.test_OpenClipAsSequence()
        self.setUp()
        self.test_SeqNrrdFromLungusOpensWithSlicerReader()

    def _writeTestClip(self, fileName):
        import numpy as np
        from lungus.io import write_clip
        from lungus.io.clip import Clip

        t, row, col = np.meshgrid(np.arange(5), np.arange(40), np.arange(60), indexing="ij")
        frames = ((4 * t + 3 * row + 2 * col) % 256).astype(np.uint8)
        path = os.path.join(slicer.app.temporaryPath, fileName)
        write_clip(Clip(frames=frames, fps=20.0, spacing_mm=(0.2, 0.25)), path)
        return path, frames

    def test_OpenClipAsSequence(self):
        import numpy as np

        self.delayDisplay("Open a clip as a sequence")
        path, frames = self._writeTestClip("LungUSBLinesTest.seq.nrrd")
        loaded = LungUSBLinesLogic().loadClip(path)
        sequenceNode, browserNode, proxyNode = loaded.nodes
        self.assertEqual(sequenceNode.GetNumberOfDataNodes(), 5)
        self.assertAlmostEqual(browserNode.GetPlaybackRateFps(), 20.0, places=3)
        browserNode.SetSelectedItemNumber(3)
        np.testing.assert_array_equal(slicer.util.arrayFromVolume(proxyNode)[0], frames[3])
        LungUSBLinesLogic().showInViews(browserNode)
        self.delayDisplay("Test passed")

    def test_SeqNrrdFromLungusOpensWithSlicerReader(self):
        import numpy as np

        self.delayDisplay("Open a lungus-written .seq.nrrd with Slicer's own reader")
        path, frames = self._writeTestClip("LungUSBLinesReaderTest.seq.nrrd")
        sequenceNode = slicer.util.loadSequence(path)
        self.assertEqual(sequenceNode.GetNumberOfDataNodes(), 5)
        for i in range(5):
            np.testing.assert_array_equal(
                slicer.util.arrayFromVolume(sequenceNode.GetNthDataNode(i))[0], frames[i]
            )
        self.assertAlmostEqual(float(sequenceNode.GetNthIndexValue(4)), 0.2, places=6)
        self.delayDisplay("Test passed")
