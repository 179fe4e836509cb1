"""LungUSInference: batch inference and the Python-console API.

Thin Qt layer over LungUSInferenceLib (Qt-free, tested headless): widgets -> *Lib -> lungus.
For now the panel shows where inference would run (engine version, PyTorch, GPU) and
installs PyTorch through the PyTorch extension.
"""

import slicer
from LungUSBLinesLib import dependencies
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)

#
# LungUSInference
#


class LungUSInference(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "LungUS Inference"
        self.parent.categories = ["Ultrasound"]
        self.parent.dependencies = ["LungUSBLines"]
        self.parent.contributors = ["LungUS B-lines contributors"]
        self.parent.helpText = """
Find B-lines in lung-ultrasound clips with trained `lungus` models, one clip or many.
This panel shows the engine and PyTorch this Slicer runs, and installs PyTorch.
See the <a href="https://github.com/lungus-blines/SlicerLungUSBLines">extension documentation</a>.
"""
        self.parent.acknowledgementText = """
Developed as open source by the LungUS B-lines contributors. PyTorch comes through the
PyTorch extension (SlicerPyTorch).
"""


#
# LungUSInferenceWidget
#


class LungUSInferenceWidget(ScriptedLoadableModuleWidget):
    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        self.logic = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LungUSInference.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LungUSInferenceLogic()

        self.ui.installTorchButton.connect("clicked(bool)", self.onInstallTorch)
        self.ui.engineLabel.text = f"Engine: lungus {dependencies.engine_version()}"
        self.updateTorchStatus()

    def enter(self):
        self.updateTorchStatus()

    def updateTorchStatus(self):
        status = self.logic.torchStatus()
        self.ui.torchLabel.text = status.describe()
        self.ui.installTorchButton.visible = not status.installed

    def onInstallTorch(self):
        from LungUSBLines import ensureTorch

        with slicer.util.tryWithErrorDisplay("Installing PyTorch failed.", waitCursor=True):
            ensureTorch()
        self.updateTorchStatus()


#
# LungUSInferenceLogic
#


class LungUSInferenceLogic(ScriptedLoadableModuleLogic):
    """Thin wrapper over LungUSInferenceLib; usable from the Python console:

    slicer.util.getModuleLogic("LungUSInference").torchStatus().describe()
    """

    def torchStatus(self):
        from LungUSInferenceLib.environment import torch_status

        return torch_status()


#
# LungUSInferenceTest
#


class LungUSInferenceTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer; the Lib is tested headless in the repository's Testing/bridge."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_TorchStatusMatchesTheRunningPython()

    def test_TorchStatusMatchesTheRunningPython(self):
        import importlib.util

        self.delayDisplay("PyTorch status of Slicer's Python")
        status = LungUSInferenceLogic().torchStatus()
        self.assertEqual(status.installed, importlib.util.find_spec("torch") is not None)
        self.assertTrue(status.describe().startswith("PyTorch"))
        self.delayDisplay("Test passed")
