"""LungUSInference: batch inference and the Python-console API.

Thin Qt layer over LungUSInferenceLib (Qt-free, tested headless): widgets -> *Lib -> lungus.
A batch runs as a `lungus infer` subprocess of Slicer's Python (the GUI stays free); its
clips.csv is shown as a table node, failed clips with their errors.
"""

import logging
import os
import pathlib
import time
from typing import Annotated

import qt
import slicer
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from LungUSBLines import ParameterNodePanelMixin, fillComboBox
from LungUSBLinesLib import dependencies, panel

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
Find B-lines in many lung-ultrasound clips with trained `lungus` models: choose clip files,
folders or manifest CSVs, a classifier and/or a segmenter, and an output folder. The run is a
`lungus infer` process beside Slicer; its clips.csv (one row per clip, failed clips with their
error) is shown as a table; Make review queue ranks its clips by how much a review would teach,
for LungUS B-lines to walk. From the Python console:
<pre>
import LungUSInferenceLib as lus
result = lus.analyse("/data/scan.mp4", "/models/bline2.pt", segmenter="/models/seg.pt")
summary = lus.run_batch(["/data/clips"], "/models/bline2.pt", "/data/results")
</pre>
See the <a href="https://github.com/lungus-blines/SlicerLungUSBLines">extension documentation</a>.
"""
        self.parent.acknowledgementText = """
Developed as open source by the LungUS B-lines contributors. PyTorch comes through the
PyTorch extension (SlicerPyTorch).
"""


#
# LungUSInferenceParameterNode
#


@parameterNodeWrapper
class LungUSInferenceParameterNode:
    """The batch panel's choices, saved with the scene (choices and defaults: LungUSBLinesLib.panel)."""

    inputs: list[str]
    modelPath: str = ""
    segmenterPath: str = ""
    device: Annotated[str, Choice(panel.choice_values(panel.DEVICE_CHOICES))] = panel.DEFAULT_DEVICE
    outputFolder: pathlib.Path = panel.home_folder(panel.RESULTS_FOLDER)
    overlays: bool = False
    explain: bool = False
    resume: bool = False


#
# LungUSInferenceWidget
#


class LungUSInferenceWidget(ScriptedLoadableModuleWidget, VTKObservationMixin, ParameterNodePanelMixin):
    panelPaths = (("modelPathLineEdit", "modelPath"), ("segmenterPathLineEdit", "segmenterPath"))
    panelLists = (("deviceSelector", "device"),)
    POLL_INTERVAL_MS = 200

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.job = None
        self.jobOutputFolder = None
        self.jobStarted = None
        self.pollTimer = None
        self.resultsFolder = None  # the run whose clips.csv is shown

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LungUSInference.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LungUSInferenceLogic()

        fillComboBox(self.ui.deviceSelector, panel.DEVICE_CHOICES)
        self.ui.progressBar.maximum = 100
        self.pollTimer = qt.QTimer()
        self.pollTimer.setInterval(self.POLL_INTERVAL_MS)
        self.pollTimer.connect("timeout()", self.onPoll)

        self.ui.addFilesButton.connect("clicked(bool)", self.onAddFiles)
        self.ui.addFolderButton.connect("clicked(bool)", self.onAddFolder)
        self.ui.removeInputsButton.connect("clicked(bool)", self.onRemoveInputs)
        self.ui.runButton.connect("clicked(bool)", self.onRun)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.loadResultsButton.connect("clicked(bool)", self.onLoadResults)
        self.ui.makeReviewQueueButton.connect("clicked(bool)", self.onMakeReviewQueue)
        self.ui.installTorchButton.connect("clicked(bool)", self.onInstallTorch)
        self.ui.engineLabel.text = f"Engine: lungus {dependencies.engine_version()}"
        self.updateTorchStatus()
        self.setupParameterNode()  # the panel's choices are saved with the scene

    def cleanup(self):
        self.removeObservers()
        if self.pollTimer is not None:
            self.pollTimer.stop()
        if self.job is not None and self.job.running:
            self.job.cancel(grace_s=5)

    def enter(self):
        ParameterNodePanelMixin.enter(self)
        self.updateTorchStatus()

    def showParameters(self, parameters):
        if self.inputs() != list(parameters.inputs):
            self.ui.inputsList.clear()
            self.ui.inputsList.addItems(list(parameters.inputs))

    # ------------------------------------------------------------------ environment
    def updateTorchStatus(self):
        status = self.logic.torchStatus()
        self.ui.torchLabel.text = status.describe()
        self.ui.installTorchButton.visible = not status.installed

    def onInstallTorch(self):
        from LungUSBLines import ensureTorch

        with slicer.util.tryWithErrorDisplay("Installing PyTorch failed.", waitCursor=True):
            ensureTorch()
        self.updateTorchStatus()

    # ------------------------------------------------------------------ inputs
    def inputs(self):
        return [self.ui.inputsList.item(i).text() for i in range(self.ui.inputsList.count)]

    def addInputs(self, paths):
        present = set(self.inputs())
        for path in paths:
            if path and path not in present:
                self.ui.inputsList.addItem(path)
                present.add(path)
        self.storeInputs()

    def storeInputs(self):
        if self._parameterNode is not None:
            self._parameterNode.inputs = self.inputs()

    def onAddFiles(self):
        from LungUSBLines import ensurePythonRequirements

        if not ensurePythonRequirements():
            return
        from LungUSBLinesLib.clips import clip_file_name_filter  # reads lungus.io: needs OpenCV

        paths = qt.QFileDialog.getOpenFileNames(
            slicer.util.mainWindow(),
            "Add clip files or manifest CSVs",
            qt.QDir.homePath(),
            "Manifests (*.csv);;" + clip_file_name_filter(),
        )
        self.addInputs(list(paths))

    def onAddFolder(self):
        from LungUSBLines import ensurePythonRequirements

        if not ensurePythonRequirements():
            return
        path = qt.QFileDialog.getExistingDirectory(
            slicer.util.mainWindow(), "Add a folder of clips", qt.QDir.homePath()
        )
        self.addInputs([path])

    def onRemoveInputs(self):
        for item in self.ui.inputsList.selectedItems():
            self.ui.inputsList.takeItem(self.ui.inputsList.row(item))
        self.storeInputs()

    # ------------------------------------------------------------------ running
    def onRun(self):
        from LungUSBLines import ensurePythonRequirements, showError

        if not ensurePythonRequirements(withTorch=True):
            return
        try:
            request = self.logic.batchRequest(
                inputs=self.inputs(),
                out=self.ui.outputFolderButton.directory,
                model=self.ui.modelPathLineEdit.currentPath,
                segmenter=self.ui.segmenterPathLineEdit.currentPath,
                device=self.ui.deviceSelector.currentData,
                overlays=self.ui.overlaysCheckBox.checked,
                explain=self.ui.explainCheckBox.checked,
                resume=self.ui.resumeCheckBox.checked,
            )
            self.job = self.logic.startBatch(request)
        except Exception as error:
            showError("Could not start the batch.", error)
            return
        for pathEdit in (self.ui.modelPathLineEdit, self.ui.segmenterPathLineEdit):
            if pathEdit.currentPath:
                pathEdit.addCurrentPathToHistory()
        self.jobOutputFolder = request.out
        self.jobStarted = time.time()
        self.ui.logText.plainText = " ".join(self.job.arguments)
        self.ui.statusLabel.text = "Starting (loading PyTorch and the models)..."
        self.setRunning(True)
        self.pollTimer.start()

    def onPoll(self):
        if self.job is None:
            self.pollTimer.stop()
            return
        lines = self.job.poll()
        if lines:
            self.ui.logText.appendPlainText("\n".join(lines))
        if self.job.progress is not None and not self.job.cancelled:  # keep "Cancelling..." shown
            self.ui.progressBar.value = int(round(100 * self.job.progress.fraction))
            self.ui.statusLabel.text = self.job.progress.message
        if not self.job.running:
            self.pollTimer.stop()
            self.onFinished()

    def onCancel(self):
        if self.job is None:
            return
        self.ui.statusLabel.text = "Cancelling (the clips done so far are kept)..."
        # The job stops as on Ctrl+C, or is ended with all it started; onPoll sees it end.
        self.job.cancel(wait=False)

    def onFinished(self):
        job, self.job = self.job, None
        self.setRunning(False)
        # lungus infer exits with 1 when some clips failed (the rest were scored); it writes
        # clips.csv also when interrupted. No fresh clips.csv: the run itself failed.
        wrote = self.logic.resultsWritten(self.jobOutputFolder, since=self.jobStarted)
        if job.cancelled:
            self.ui.statusLabel.text = "Cancelled. Tick Resume and run again to finish the remaining clips."
        elif job.returncode == 0 or (job.returncode == 1 and wrote):
            self.ui.statusLabel.text = job.last_line()
        else:
            self.ui.statusLabel.text = "Failed: " + job.error_message()
            slicer.util.errorDisplay(f"The batch failed.\n\n{job.error_message()}")
            return
        if wrote:
            self.showResults(self.jobOutputFolder)

    def setRunning(self, running):
        for widget in (
            self.ui.runButton,
            self.ui.addFilesButton,
            self.ui.addFolderButton,
            self.ui.removeInputsButton,
            self.ui.loadResultsButton,
            self.ui.modelPathLineEdit,
            self.ui.segmenterPathLineEdit,
            self.ui.outputFolderButton,
        ):
            widget.enabled = not running
        self.ui.cancelButton.enabled = running
        if running:
            self.ui.progressBar.value = 0

    # ------------------------------------------------------------------ results
    def onLoadResults(self):
        from LungUSBLines import ensurePythonRequirements

        if not ensurePythonRequirements():
            return
        folder = qt.QFileDialog.getExistingDirectory(
            slicer.util.mainWindow(), "Folder of a `lungus infer` run", self.ui.outputFolderButton.directory
        )
        if folder:
            self.showResults(folder)

    def showResults(self, folder):
        from LungUSBLines import showError

        try:
            results = self.logic.loadResults(folder)
        except Exception as error:
            showError("Could not load the results.", error)
            return
        self.ui.resultsTableView.setMRMLTableNode(results.table)
        self.ui.resultsSummaryLabel.text = results.describe()
        self.ui.resultsCollapsibleButton.collapsed = False
        self.resultsFolder = str(results.clips_csv.parent)
        self.ui.makeReviewQueueButton.enabled = True

    def onMakeReviewQueue(self):
        from LungUSBLines import ensurePythonRequirements, showError

        if not ensurePythonRequirements() or self.resultsFolder is None:
            return
        try:
            with slicer.util.WaitCursor():
                queue = self.logic.makeReviewQueue(self.resultsFolder)
        except Exception as error:
            showError("Could not make the review queue.", error)
            return
        self.ui.reviewQueueTableView.setMRMLTableNode(queue.table)
        self.ui.reviewQueueSummaryLabel.text = queue.describe()


#
# LungUSInferenceLogic
#


class LungUSInferenceLogic(ScriptedLoadableModuleLogic):
    """Thin wrapper over LungUSInferenceLib for slicer.mrmlScene; usable from the Python console:

    logic = slicer.util.getModuleLogic("LungUSInference")
    result = logic.analyse("/data/scan.mp4", "/models/bline2.pt")           # in this process
    summary = logic.runBatch(["/data/clips"], "/models/bline2.pt", "/data/results")
    job = logic.startBatch(logic.batchRequest(["/data/clips"], "/data/results", model="/models/bline2.pt"))
    job.wait(); logic.loadResults("/data/results").table                     # clips.csv as a table node
    """

    def getParameterNode(self):
        return LungUSInferenceParameterNode(super().getParameterNode())

    def torchStatus(self):
        from LungUSInferenceLib.environment import torch_status

        return torch_status()

    def batchRequest(self, inputs, out, model=None, segmenter=None, device="auto", **options):
        """A validated `lungus infer` run (LungUSError saying what is missing)."""
        from LungUSInferenceLib.batch import BatchRequest

        return BatchRequest(
            inputs=list(inputs),
            out=out,
            model=model or None,
            segmenter=segmenter or None,
            device=device,
            **options,
        ).validate()

    def startBatch(self, request):
        """Start `lungus infer` with Slicer's Python (PythonSlicer) through launchConsoleProcess;
        returns the EngineProcess to poll."""
        from LungUSBLinesLib.processes import default_python
        from LungUSInferenceLib.batch import start_batch

        def launch(arguments, environment, cwd):
            return slicer.util.launchConsoleProcess(arguments, updateEnvironment=environment, cwd=cwd)

        logging.info(f"LungUS Inference: running lungus infer into {request.out}")
        return start_batch(request, python=default_python(), launch=launch)

    def resultsWritten(self, folder, since=None):
        """Whether the run wrote folder/clips.csv (at or after ``since``, a time.time() value)."""
        from LungUSInferenceLib.batch import results_written

        return results_written(folder, since)

    def loadResults(self, folder):
        """A run's clips.csv as a table node (BatchResults: table, failed clips with their errors)."""
        from LungUSInferenceLib.batch import load_batch_results

        return load_batch_results(slicer.mrmlScene, folder)

    def makeReviewQueue(self, folder):
        """Rank a run's clips for review into folder/review_queue.csv, shown as a table node
        (ReviewQueueTable: table, queue_csv, n_clips)."""
        from LungUSInferenceLib.batch import make_review_queue

        return make_review_queue(slicer.mrmlScene, folder)

    def analyse(self, clip, model, segmenter=None, device="auto", explain=None):
        """One clip (a file, a lungus Clip or a sequence node), in this process: a ClipAnalysis."""
        from LungUSInferenceLib.console import analyse

        return analyse(clip, model, segmenter, device=device, explain=explain)

    def analyseIntoScene(self, path, model, segmenter=None, device="auto", explain=None):
        """Open a clip in the scene with its results beside it: (LoadedClip, AnalysisNodes)."""
        from LungUSInferenceLib.console import analyse_into_scene

        return analyse_into_scene(slicer.mrmlScene, path, model, segmenter, device=device, explain=explain)

    def runBatch(self, inputs, model, out, segmenter=None, progress=None, **options):
        """Many clips in this process (scripts; the panel uses a subprocess): a BatchSummary."""
        from LungUSInferenceLib.console import run_batch

        return run_batch(inputs, model, out, segmenter, progress=progress, **options)


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
        self.setUp()
        self.test_BatchSubprocessScoresClips()

    def test_TorchStatusMatchesTheRunningPython(self):
        import importlib.util

        self.delayDisplay("PyTorch status of Slicer's Python")
        status = LungUSInferenceLogic().torchStatus()
        self.assertEqual(status.installed, importlib.util.find_spec("torch") is not None)
        self.assertTrue(status.describe().startswith("PyTorch"))
        self.delayDisplay("Test passed")

    def test_BatchSubprocessScoresClips(self):
        from LungUSBLinesLib.selftest import self_test_skip_reason

        skipReason = self_test_skip_reason(with_torch=True)  # installs nothing: no network
        if skipReason:
            self.delayDisplay(skipReason)
            return
        import numpy as np

        from lungus.infer.recipes import random_model_file
        from lungus.io import write_clip
        from lungus.io.clip import Clip

        self.delayDisplay("Run lungus infer as a subprocess on two clips and a broken file")
        folder = slicer.util.tempDirectory("LungUSInferenceTest")
        clips = os.path.join(folder, "clips")
        os.makedirs(clips)
        t, row, col = np.meshgrid(np.arange(6), np.arange(48), np.arange(64), indexing="ij")
        for i in range(2):
            frames = ((5 * t + 3 * row + (2 + i) * col) % 256).astype(np.uint8)
            write_clip(Clip(frames=frames, fps=20.0), os.path.join(clips, f"clip{i}.seq.nrrd"))
        with open(os.path.join(clips, "broken.mp4"), "wb") as handle:
            handle.write(b"not a video")
        model = random_model_file(
            os.path.join(folder, "classifier.pt"),
            "bline2",
            "frame_cnn",
            size=32,
            frames=4,
            model_args={"width": 4},
            name="selftest-cls",
        )
        logic = LungUSInferenceLogic()
        out = os.path.join(folder, "results")
        job = logic.startBatch(logic.batchRequest([clips], out, model=str(model), device="cpu", workers=0))
        returncode = job.wait(timeout=600, on_lines=lambda lines: slicer.app.processEvents())
        self.assertEqual(returncode, 1, job.error_message())  # the broken file failed, the run went on
        self.assertEqual(job.progress.fraction, 1.0)
        results = logic.loadResults(out)
        self.assertEqual((results.n_clips, results.n_scored), (3, 2))
        self.assertTrue(results.failed[0][0].endswith("broken.mp4"))
        self.assertEqual(results.table.GetNumberOfRows(), 3)
        self.delayDisplay("Test passed")
