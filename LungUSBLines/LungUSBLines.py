"""LungUS B-lines: review lung-ultrasound clips in 3D Slicer.

The widget is a thin Qt layer. Everything it does goes through LungUSBLinesLib (the
Qt-free bridge, tested headless under slicer-core), which uses the `lungus` engine:
widgets -> LungUSBLinesLib -> lungus.
"""

import functools
import logging
import os
import pathlib
from typing import Annotated

import qt
import slicer
import vtk
from slicer.parameterNodeWrapper import Choice, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

# Light on purpose: it only inspects which packages are installed, so the module loads
# in a fresh Slicer before the engine's own requirements are there.
from LungUSBLinesLib import dependencies, panel

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
Find B-lines with trained `lungus` models: the clip's class and scores, per-frame curves with a
time marker, the segmentation and the classifier's heat map, all playing with the clip.
Review what the models said: agree or set the label with one key, correct the masks frame by frame
in the Segment Editor, and keep both in a review folder the next training reads.
For 3D Slicer 5.10 and 5.12 (and later); it installs only what Slicer lacks and never changes
a Python package Slicer bundles.
See the <a href="https://github.com/lungus-blines/SlicerLungUSBLines">extension documentation</a>.
"""
        self.parent.acknowledgementText = """
Developed as open source by the LungUS B-lines contributors. Clips are read by the `lungus`
engine that ships inside this module; sequences play through Slicer's Sequences module.
"""


def ensurePythonRequirements(withTorch=False):
    """Install what the engine needs and Slicer's Python lacks, after the user agrees.

    Packages Slicer bundles (numpy, pydicom, pillow) are never installed or changed: if one
    falls short, the user is told which Slicer to use. The rest come through pip, under
    constraints that pin the bundled ones; torch through the PyTorch extension (SlicerPyTorch),
    which picks the build that matches the computer's GPU. Returns True when all requirements are met.
    """
    import tempfile
    from pathlib import Path

    plan = dependencies.install_plan()
    refusal = plan.refusal()
    if refusal:
        slicer.util.errorDisplay(refusal, windowTitle="LungUS B-lines: unsupported Slicer")
        return False
    if plan.install:
        listing = "\n".join(f"  {item.describe()}" for item in plan.install)
        if not slicer.util.confirmOkCancelDisplay(
            "LungUS B-lines needs these Python packages, which Slicer's Python lacks:\n\n"
            f"{listing}\n\nInstall them now with pip? This needs an internet connection "
            "and may take a few minutes.",
            "LungUS B-lines: install Python packages",
        ):
            return False
        # tryWithErrorDisplay shows the error and re-raises it: the slot must not see it.
        try:
            with slicer.util.tryWithErrorDisplay("Installing Python packages failed.", waitCursor=True):
                with tempfile.TemporaryDirectory(prefix="lungus-pip-") as scratch:
                    constraints = dependencies.write_bundled_constraints(Path(scratch) / "slicer-bundled.txt")
                    slicer.util.pip_install(plan.pip_arguments(constraints))
        except Exception:  # noqa: BLE001 - shown to the user above
            return False
        if _restartNeededFor(dependencies.stale_imports(plan.install)):
            return False
    if withTorch:
        return ensureTorch()
    return True


def ensureTorch():
    """torch and torchvision at the versions the engine needs, through the PyTorch extension,
    installed (or updated) with the user's confirmation."""
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        slicer.util.errorDisplay(
            "This module needs the PyTorch extension. Install 'PyTorch' from the Extensions Manager, "
            "restart Slicer, and try again."
        )
        return False
    missing = dependencies.missing_requirements(dependencies.TORCH_REQUIREMENTS)
    if not missing:
        return True
    torchRequirement, torchvisionRequirement = dependencies.torch_version_specifiers()
    try:
        with slicer.util.tryWithErrorDisplay("Installing PyTorch failed.", waitCursor=True):
            torch = PyTorchUtils.PyTorchUtilsLogic().installTorch(
                askConfirmation=True,
                torchVersionRequirement=torchRequirement,
                torchvisionVersionRequirement=torchvisionRequirement,
            )
    except Exception:  # noqa: BLE001 - shown to the user above
        return False
    if torch is None:
        return False
    if _restartNeededFor(dependencies.stale_imports(missing)):
        return False
    return not dependencies.missing_requirements(dependencies.TORCH_REQUIREMENTS)


def _restartNeededFor(updated):
    """Tell the user that packages just updated (comma-separated names) that were already
    imported take effect after a restart (never one Slicer bundles: those are never changed).
    Returns True when there were any."""
    if updated:
        slicer.util.infoDisplay(f"Updated {updated}: restart Slicer to use the new version.", "LungUS B-lines")
    return bool(updated)


#
# Shared panel helpers (the other LungUS modules use them too)
#


def fillComboBox(comboBox, choices, selected=None):
    """Replace the items of ``comboBox`` with (title, value) ``choices`` and select ``selected``
    (the first item when it is not among them), without emitting change signals."""
    wasBlocked = comboBox.blockSignals(True)
    comboBox.clear()
    for title, value in choices:
        comboBox.addItem(title, value)
    comboBox.blockSignals(wasBlocked)
    selectComboBoxData(comboBox, selected)


def selectComboBoxData(comboBox, value):
    """Select the item whose data is ``value`` (the first item when none is), without signals."""
    wasBlocked = comboBox.blockSignals(True)
    comboBox.setCurrentIndex(max(0, comboBox.findData(value)))
    comboBox.blockSignals(wasBlocked)


def showError(context, error):
    """One line for the user (what failed, and why); the traceback under Details only for bugs."""
    from LungUSBLinesLib.messages import error_details, error_message

    logging.error(f"{context} {error_message(error)}")
    details = error_details(error)
    extra = {"detailedText": details} if details else {}
    slicer.util.errorDisplay(f"{context}\n\n{error_message(error)}", **extra)


class ParameterNodePanelMixin:
    """The scripted-module template's parameter-node lifecycle, shared by the LungUS widgets.

    The widget (also a VTKObservationMixin) has ``self.logic``, whose getParameterNode() returns
    its @parameterNodeWrapper class; connectGui binds the .ui widgets that carry a
    SlicerParameterName. ``panelPaths`` and ``panelLists`` name the (ui widget, field) pairs it
    cannot bind: path fields that may be empty (a pathlib.Path field reads "" as ".") and lists
    whose items carry a value besides their title. ``showParameters`` may show more.
    """

    panelPaths = ()
    panelLists = ()

    def setupParameterNode(self):
        """In setup(), after self.ui and self.logic exist."""
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        for name, _field in self.panelPaths:
            getattr(self.ui, name).connect("currentPathChanged(QString)", self.onPanelFieldChanged)
        for name, _field in self.panelLists:
            getattr(self.ui, name).connect("currentIndexChanged(int)", self.onPanelFieldChanged)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.initializeParameterNode()

    def initializeParameterNode(self):
        self.setParameterNode(self.logic.getParameterNode())

    def setParameterNode(self, parameterNode):
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode
            )
        self._parameterNode = parameterNode
        if self._parameterNode:
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(
                self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGUIFromParameterNode
            )
            self.updateGUIFromParameterNode()

    def enter(self):
        self.initializeParameterNode()

    def exit(self):
        self.setParameterNode(None)

    def onSceneStartClose(self, caller, event):
        self.setParameterNode(None)  # the scene's parameter node goes with it

    def onSceneEndClose(self, caller, event):
        if self.parent.isEntered:
            self.initializeParameterNode()

    def updateGUIFromParameterNode(self, caller=None, event=None):
        parameters = self._parameterNode
        if parameters is None:
            return
        for name, field in self.panelPaths:
            pathEdit = getattr(self.ui, name)
            if pathEdit.currentPath != getattr(parameters, field):
                wasBlocked = pathEdit.blockSignals(True)
                pathEdit.currentPath = getattr(parameters, field)
                pathEdit.blockSignals(wasBlocked)
        for name, field in self.panelLists:
            selectComboBoxData(getattr(self.ui, name), getattr(parameters, field))
        self.showParameters(parameters)

    def showParameters(self, parameters):
        """What else the panel shows from the parameter node (none by default)."""

    def onPanelFieldChanged(self, *unused):
        if self._parameterNode is None:
            return
        with slicer.util.NodeModify(self._parameterNode):
            for name, field in self.panelPaths:
                setattr(self._parameterNode, field, getattr(self.ui, name).currentPath)
            for name, field in self.panelLists:
                setattr(self._parameterNode, field, getattr(self.ui, name).currentData)


#
# LungUSBLinesParameterNode
#


@parameterNodeWrapper
class LungUSBLinesParameterNode:
    """The panel's choices, saved with the scene (choices and defaults: LungUSBLinesLib.panel)."""

    clip: slicer.vtkMRMLSequenceBrowserNode
    classifierPath: str = ""
    segmenterPath: str = ""
    device: Annotated[str, Choice(panel.choice_values(panel.DEVICE_CHOICES))] = panel.DEFAULT_DEVICE
    explanationMethod: Annotated[str, Choice(panel.choice_values(panel.EXPLANATION_CHOICES))] = (
        panel.DEFAULT_EXPLANATION
    )
    reviewFolder: pathlib.Path = panel.home_folder(panel.REVIEWS_FOLDER)
    queuePath: str = ""


#
# LungUSBLinesWidget
#


class LungUSBLinesWidget(ScriptedLoadableModuleWidget, VTKObservationMixin, ParameterNodePanelMixin):
    panelPaths = (
        ("classifierPathLineEdit", "classifierPath"),
        ("segmenterPathLineEdit", "segmenterPath"),
        ("queuePathLineEdit", "queuePath"),
    )
    panelLists = (("deviceSelector", "device"), ("explainSelector", "explanationMethod"))
    POLL_INTERVAL_MS = 200
    # One key each while this module is shown (the Segment Editor has its own when it is).
    # R resets a slice view in Slicer, so M marks a frame; lus4 has the most classes (four).
    AGREE_KEY, MARK_FRAME_KEY, LABEL_KEYS = "A", "M", "1234"

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._analysing = False
        self.analysisJob = None  # the running AnalysisJob (a `lungus analyse` process)
        self.analysisTimer = None
        self.explanationCheck = None  # which explanations the classifier supports (ExplanationCheck)
        self.explanationTimer = None
        self.queueWalker = None  # the review queue being walked (LungUSBLinesLib.review.QueueWalker)
        self.queuePath = ""  # the file it was read from
        self.labelButtons = []  # the verdict buttons of the current clip's label scheme
        self.labelScheme = None
        self.reviewShortcuts = []

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

        fillComboBox(self.ui.explainSelector, panel.explanation_choices(()))
        fillComboBox(self.ui.deviceSelector, panel.DEVICE_CHOICES)
        self.ui.analysisProgressBar.maximum = 100

        self.ui.openFileButton.connect("clicked(bool)", self.onOpenFile)
        self.ui.openFolderButton.connect("clicked(bool)", self.onOpenFolder)
        self.ui.clipSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onClipSelected)
        self.ui.analyseButton.connect("clicked(bool)", self.onAnalyse)
        self.ui.cancelAnalysisButton.connect("clicked(bool)", self.onCancelAnalysis)
        self.ui.jumpToTopFrameButton.connect("clicked(bool)", self.onJumpToTopFrame)
        self.ui.saveResultsButton.connect("clicked(bool)", self.onSaveResults)
        self.ui.saveSceneButton.connect("clicked(bool)", self.onSaveScene)
        self.ui.curveSelector.connect("currentIndexChanged(int)", self.onShowResults)
        self.ui.showSegmentationCheckBox.connect("toggled(bool)", self.onShowResults)
        self.ui.showHeatmapCheckBox.connect("toggled(bool)", self.onShowResults)
        self.ui.reviewerLineEdit.text = self.logic.reviewerName()
        self.ui.reviewerLineEdit.connect("editingFinished()", self.onReviewerChanged)
        self.ui.queuePathLineEdit.connect("currentPathChanged(QString)", self.onQueueChanged)
        self.ui.previousClipButton.connect("clicked(bool)", self.onPreviousClip)
        self.ui.nextClipButton.connect("clicked(bool)", self.onNextClip)
        self.ui.agreeButton.connect("clicked(bool)", self.onAgree)
        self.ui.editMasksButton.connect("clicked(bool)", self.onEditMasks)
        self.ui.markFrameReviewedButton.connect("clicked(bool)", self.onMarkFrameReviewed)
        self.setupReviewShortcuts()
        self.analysisTimer = qt.QTimer()
        self.analysisTimer.setInterval(self.POLL_INTERVAL_MS)
        self.analysisTimer.connect("timeout()", self.onPollAnalysis)
        self.explanationTimer = qt.QTimer()
        self.explanationTimer.setInterval(self.POLL_INTERVAL_MS)
        self.explanationTimer.connect("timeout()", self.onPollExplanationCheck)

        self.ui.engineLabel.text = f"Engine: lungus {dependencies.engine_version()}"
        self.setupParameterNode()  # the panel's choices are saved with the scene
        self.updateClipPanel(self.ui.clipSelector.currentNode())

    def cleanup(self):
        self.stopAnalysis()
        if self.explanationTimer is not None:
            self.explanationTimer.stop()
        if self.explanationCheck is not None:
            self.explanationCheck.cancel()
        for shortcut in self.reviewShortcuts:
            shortcut.setEnabled(False)
            shortcut.deleteLater()
        self.reviewShortcuts = []
        self.removeObservers()

    def enter(self):
        ParameterNodePanelMixin.enter(self)
        self.enableReviewShortcuts(True)
        self.updateReviewPanel()  # masks may have been edited in the Segment Editor meanwhile

    def exit(self):
        self.enableReviewShortcuts(False)
        ParameterNodePanelMixin.exit(self)

    def onSceneStartClose(self, caller, event):
        if self.stopAnalysis():
            self.ui.analysisStatusLabel.text = "Stopped: the scene was closed."
        ParameterNodePanelMixin.onSceneStartClose(self, caller, event)

    def onSceneEndClose(self, caller, event):
        self.updateClipPanel(None)
        ParameterNodePanelMixin.onSceneEndClose(self, caller, event)

    def showParameters(self, parameters):
        check = self.explanationCheck
        if check is None or check.model_path != parameters.classifierPath.strip():
            # Offer only the explanation methods this classifier supports: a background process
            # reads the model (torch stays out of Slicer's process); a new path stops the last one.
            if check is not None:
                check.cancel()
            self.explanationCheck = self.logic.startExplanationCheck(parameters.classifierPath)
            if self.explanationCheck.running:
                self.explanationTimer.start()
        fillComboBox(
            self.ui.explainSelector,
            self.explanationCheck.choices(parameters.explanationMethod),
            parameters.explanationMethod,
        )
        if self.ui.explainSelector.currentData != parameters.explanationMethod:
            parameters.explanationMethod = self.ui.explainSelector.currentData  # not offered for this model
        if parameters.queuePath != self.queuePath:
            self.loadQueue(parameters.queuePath)  # a scene read from a file names its queue

    def onPollExplanationCheck(self):
        if self.explanationCheck is None or not self.explanationCheck.poll():
            self.explanationTimer.stop()
            if self._parameterNode is not None:
                self.showParameters(self._parameterNode)

    # ------------------------------------------------------------------ opening clips
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

        def showProgress(done, total, _what):
            progressDialog.value = int(100 * done / max(total, 1))
            slicer.app.processEvents()

        try:
            loaded = self.logic.loadClip(path, progressCallback=showProgress)
        except Exception as error:
            showError("Could not open the clip.", error)
            return
        finally:
            progressDialog.close()
        self.ui.clipSelector.setCurrentNode(loaded.nodes.browser)

    def onClipSelected(self, browserNode):
        self.updateClipPanel(browserNode)
        if browserNode is not None:
            self.logic.showInViews(browserNode)
            self.showResults()

    def updateClipPanel(self, browserNode):
        """Point the play controls, the information box and the results at the clip of ``browserNode``."""
        self.playWidget.setMRMLSequenceBrowserNode(browserNode)
        self.seekWidget.setMRMLSequenceBrowserNode(browserNode)
        sequenceNode = browserNode.GetMasterSequenceNode() if browserNode else None
        if sequenceNode is None:
            self.ui.clipInfoText.plainText = (
                "Open a clip to see its frames, frame rate, pixel spacing and ultrasound fan."
            )
        else:
            self.ui.clipInfoText.plainText = self.logic.clipDescription(sequenceNode)
        self.updateResultsPanel()
        self.updateReviewPanel()

    # ------------------------------------------------------------------ analysis
    def onAnalyse(self):
        browserNode = self.ui.clipSelector.currentNode()
        if browserNode is None:
            slicer.util.errorDisplay("Open or select a clip first.")
            return
        if not ensurePythonRequirements(withTorch=True):
            return
        try:
            self.analysisJob = self.logic.startAnalysis(
                browserNode,
                self.ui.classifierPathLineEdit.currentPath,
                self.ui.segmenterPathLineEdit.currentPath,
                device=self.ui.deviceSelector.currentData,
                explain=self.ui.explainSelector.currentData,
            )
        except Exception as error:
            showError("Could not start the analysis.", error)
            return
        for pathEdit in (self.ui.classifierPathLineEdit, self.ui.segmenterPathLineEdit):
            if pathEdit.currentPath:
                pathEdit.addCurrentPathToHistory()
        self.setAnalysing(True)
        self.ui.analysisStatusLabel.text = "Starting (loading PyTorch and the models)..."
        self.analysisTimer.start()

    def onPollAnalysis(self):
        job = self.analysisJob
        running = job is not None and job.poll()
        if job is not None and job.progress is not None:
            self.showAnalysisProgress(job.progress.fraction, job.progress.message)
        if running:
            return
        self.analysisTimer.stop()
        self.analysisJob = None
        self.setAnalysing(False)
        if job is None:
            return
        try:
            nodes = job.finish()
        except Exception as error:
            self.ui.analysisStatusLabel.text = "Failed."
            showError("Could not analyse the clip.", error)
            return
        if nodes is None:
            self.ui.analysisStatusLabel.text = "Cancelled."
            return
        self.ui.analysisStatusLabel.text = "Done: the results play with the clip."
        self.updateResultsPanel()
        self.updateReviewPanel()
        self.logic.showResults(nodes, **self.displayChoices())

    def onCancelAnalysis(self):
        if self.analysisJob is None:
            return
        self.ui.analysisStatusLabel.text = "Cancelling..."
        self.analysisJob.cancel(wait=False)  # returns at once; the next polls see it end

    def stopAnalysis(self):
        """Stop a running analysis and drop it (scene close, module cleanup): nothing is added.
        Returns whether one was running."""
        if self.analysisTimer is not None:
            self.analysisTimer.stop()
        job, self.analysisJob = self.analysisJob, None
        if job is None:
            return False
        job.close()
        self.setAnalysing(False)
        return True

    def showAnalysisProgress(self, fraction, message):
        self.ui.analysisProgressBar.value = int(round(100 * fraction))
        self.ui.analysisStatusLabel.text = message[:1].upper() + message[1:] + "..."

    def setAnalysing(self, analysing):
        self._analysing = analysing
        for widget in (
            self.ui.analyseButton,
            self.ui.openFileButton,
            self.ui.openFolderButton,
            self.ui.clipSelector,
            self.ui.classifierPathLineEdit,
            self.ui.segmenterPathLineEdit,
            self.ui.deviceSelector,
            self.ui.explainSelector,
            self.ui.resultsCollapsibleButton,
        ):
            widget.enabled = not analysing
        self.ui.cancelAnalysisButton.enabled = analysing
        if analysing:
            self.ui.analysisProgressBar.value = 0

    # ------------------------------------------------------------------ results
    def currentResults(self):
        return self.logic.findResults(self.ui.clipSelector.currentNode())

    def displayChoices(self):
        return {
            "curve": self.ui.curveSelector.currentData,
            "showSegmentation": self.ui.showSegmentationCheckBox.checked,
            "showHeatmap": self.ui.showHeatmapCheckBox.checked,
        }

    def updateResultsPanel(self):
        nodes = self.currentResults()
        wasBlocked = self.ui.curveSelector.blockSignals(True)
        self.ui.curveSelector.clear()
        if nodes is not None:
            for key, title in self.logic.curveTitles(nodes):
                self.ui.curveSelector.addItem(title, key)
        self.ui.curveSelector.blockSignals(wasBlocked)
        self.ui.resultsText.plainText = (
            self.logic.resultsDescription(nodes) if nodes is not None else "No results yet: analyse the clip."
        )
        hasResults = nodes is not None
        for widget in (
            self.ui.jumpToTopFrameButton,
            self.ui.saveResultsButton,
            self.ui.curveSelector,
        ):
            widget.enabled = hasResults and not self._analysing
        self.ui.showSegmentationCheckBox.enabled = hasResults and nodes.mask_sequence is not None
        self.ui.showHeatmapCheckBox.enabled = hasResults and nodes.heatmap_sequence is not None

    def onShowResults(self, *unused):
        self.showResults()

    def showResults(self):
        nodes = self.currentResults()
        if nodes is not None:
            self.logic.showResults(nodes, **self.displayChoices())

    def onJumpToTopFrame(self):
        nodes = self.currentResults()
        if nodes is None:
            return
        try:
            self.logic.jumpToTopFrame(nodes)
        except Exception as error:
            showError("Could not show the top frame.", error)

    def onSaveResults(self):
        nodes = self.currentResults()
        if nodes is None:
            return
        folder = qt.QFileDialog.getExistingDirectory(
            slicer.util.mainWindow(), "Save the clip's results into a folder", self.logic.lastFolder()
        )
        if not folder:
            return
        try:
            written = self.logic.saveResults(nodes, folder)
        except Exception as error:
            showError("Could not save the results.", error)
            return
        self.ui.analysisStatusLabel.text = "Saved " + ", ".join(
            os.path.basename(str(p)) for p in written.values()
        )

    def onSaveScene(self):
        path = qt.QFileDialog.getSaveFileName(
            slicer.util.mainWindow(),
            "Save the scene with its clips and results",
            os.path.join(self.logic.lastFolder(), "LungUS review.mrb"),
            "Slicer scene bundle (*.mrb)",
        )
        if not path:
            return
        if not path.lower().endswith(".mrb"):
            path += ".mrb"
        try:
            with slicer.util.WaitCursor():
                self.logic.saveScene(path)
        except Exception as error:
            showError("Could not save the scene.", error)
            return
        self.ui.analysisStatusLabel.text = f"Scene saved: {path}"


    # ------------------------------------------------------------------ review
    def setupReviewShortcuts(self):
        """A for Agree, M for Mark frame reviewed, 1, 2, ... for the classes of the clip's scheme.
        Enabled only while this module is shown (enter/exit); a text field with the focus keeps its keys."""
        keys = [(self.AGREE_KEY, self.onAgree), (self.MARK_FRAME_KEY, self.onMarkFrameReviewed)]
        keys += [(key, functools.partial(self.onLabelKey, int(key))) for key in self.LABEL_KEYS]
        for key, slot in keys:
            shortcut = qt.QShortcut(qt.QKeySequence(key), slicer.util.mainWindow())
            shortcut.setContext(qt.Qt.ApplicationShortcut)
            shortcut.setEnabled(False)
            shortcut.connect("activated()", slot)
            self.reviewShortcuts.append(shortcut)

    def enableReviewShortcuts(self, enabled):
        for shortcut in self.reviewShortcuts:
            shortcut.setEnabled(enabled)

    def reviewFolder(self):
        return str(self.ui.reviewFolderButton.directory)

    def onReviewerChanged(self):
        self.logic.setReviewerName(self.ui.reviewerLineEdit.text.strip())

    def currentQueueEntry(self, browserNode):
        """The queue entry of the clip of ``browserNode`` (patient, zone, what the model said), or None."""
        walker = self.queueWalker
        if walker is None or walker.current is None or browserNode is None:
            return None
        loaded = self.logic.loadedBrowser(walker.current.clip)
        return walker.current if loaded is not None and loaded.GetID() == browserNode.GetID() else None

    def updateReviewPanel(self):
        """The verdict buttons of the clip's label scheme, and what has been reviewed of it."""
        browserNode = self.ui.clipSelector.currentNode()
        scheme = None
        status = ""
        if browserNode is not None:
            try:
                scheme = self.logic.reviewScheme(browserNode, self.currentQueueEntry(browserNode))
                status = self.logic.reviewDescription(browserNode, self.reviewFolder())
            except ImportError:  # the engine's packages are not installed yet: a verdict installs them
                pass
            except Exception as error:  # noqa: BLE001 - shown in the panel, nothing to undo
                status = str(error)
        if scheme != self.labelScheme:
            self.setLabelButtons(scheme)
        hasClip = browserNode is not None
        self.ui.agreeButton.enabled = hasClip
        self.ui.editMasksButton.enabled = hasClip
        self.ui.markFrameReviewedButton.enabled = hasClip
        self.ui.reviewStatusLabel.text = status
        walker = self.queueWalker
        self.ui.previousClipButton.enabled = walker is not None and walker.position > 0
        self.ui.nextClipButton.enabled = walker is not None and walker.position + 1 < len(walker)

    def setLabelButtons(self, scheme):
        """One button per class of ``scheme`` (none when the clip's scheme is not known yet)."""
        for button in self.labelButtons:
            self.ui.verdictButtonsWidget.layout().removeWidget(button)
            button.deleteLater()
        self.labelButtons = []
        self.labelScheme = scheme
        for number, label in enumerate(self.logic.labelChoices(scheme) if scheme else (), start=1):
            button = qt.QPushButton(f"{label} ({number})")
            button.toolTip = f"Record {label!r} as the clip's label (key {number})."
            button.connect("clicked(bool)", functools.partial(self.onLabelButton, label))
            self.ui.verdictButtonsWidget.layout().addWidget(button)
            self.labelButtons.append(button)

    def onLabelButton(self, label, _checked=False):
        self.onLabel(label)

    def onLabelKey(self, number):
        if self.labelScheme and 1 <= number <= len(self.labelButtons):
            self.onLabel(self.logic.labelChoices(self.labelScheme)[number - 1])

    def onAgree(self):
        if not ensurePythonRequirements():
            return
        self.recordVerdict(None)

    def onLabel(self, label):
        if not ensurePythonRequirements():
            return
        self.recordVerdict(label)

    def recordVerdict(self, label):
        """Record the verdict (``label`` None: agree) and the corrected masks in the review folder."""
        browserNode = self.ui.clipSelector.currentNode()
        if browserNode is None:
            slicer.util.errorDisplay("Open or select a clip first.")
            return
        self.onReviewerChanged()
        try:
            with slicer.util.WaitCursor():
                saved = self.logic.recordReview(
                    browserNode,
                    self.reviewFolder(),
                    self.ui.reviewerLineEdit.text.strip(),
                    label,
                    comment=self.ui.commentLineEdit.text,
                    entry=self.currentQueueEntry(browserNode),
                )
        except Exception as error:
            showError("Could not record the review.", error)
            return
        self.ui.commentLineEdit.text = ""
        self.updateReviewPanel()
        self.ui.reviewStatusLabel.text = f"Saved: {saved.line()}.\n{self.ui.reviewStatusLabel.text}"

    def onEditMasks(self):
        if not ensurePythonRequirements():
            return
        browserNode = self.ui.clipSelector.currentNode()
        if browserNode is None:
            slicer.util.errorDisplay("Open or select a clip first.")
            return
        try:
            with slicer.util.WaitCursor():  # a segmentation per frame: seconds for a long clip
                self.logic.editMasks(browserNode)
        except Exception as error:
            showError("Could not start editing the masks.", error)
            return
        slicer.util.selectModule("SegmentEditor")

    def onMarkFrameReviewed(self):
        if not ensurePythonRequirements():
            return
        browserNode = self.ui.clipSelector.currentNode()
        if browserNode is None:
            return
        try:
            with slicer.util.WaitCursor():
                frame = self.logic.markFrameReviewed(browserNode)
        except Exception as error:
            showError("Could not mark the frame.", error)
            return
        self.updateReviewPanel()
        self.ui.reviewStatusLabel.text = f"Frame {frame} marked reviewed.\n{self.ui.reviewStatusLabel.text}"

    def onQueueChanged(self, path):
        if not ensurePythonRequirements():
            return
        self.loadQueue(path)

    def loadQueue(self, path):
        self.queueWalker, self.queuePath = None, path
        if path and os.path.isfile(path):
            try:
                self.queueWalker = self.logic.openQueue(path)
            except ImportError:  # a scene naming a queue, opened before the engine's packages are in
                self.queuePath = ""  # read it when the panel next shows the scene's choices
            except Exception as error:
                showError("Could not read the review queue.", error)
        browserNode = self.ui.clipSelector.currentNode()
        if self.queueWalker is not None and browserNode is not None:
            self.logic.goToClip(self.queueWalker, browserNode)  # the clip on show, when it is queued
        self.showQueuePosition()

    def showQueuePosition(self):
        walker = self.queueWalker
        self.ui.queueStatusLabel.text = (
            "No queue: choose a queue CSV to walk it, or review the clips you open."
            if walker is None
            else walker.where()
        )
        self.updateReviewPanel()

    def onPreviousClip(self):
        if not ensurePythonRequirements():
            return
        if self.queueWalker is not None and self.queueWalker.previous() is not None:
            self.openQueueClip()

    def onNextClip(self):
        if not ensurePythonRequirements():
            return
        if self.queueWalker is not None and self.queueWalker.next() is not None:
            self.openQueueClip()

    def openQueueClip(self):
        """Show the queue's current clip: the one already open, else open it (and analyse it when
        models are chosen)."""
        entry = self.queueWalker.current
        browserNode = self.logic.loadedBrowser(entry.clip)
        if browserNode is not None:
            self.ui.clipSelector.setCurrentNode(browserNode)
        else:
            self.openClip(entry.clip)
            browserNode = self.logic.loadedBrowser(entry.clip)
            hasModel = self.ui.classifierPathLineEdit.currentPath or self.ui.segmenterPathLineEdit.currentPath
            if browserNode is not None and hasModel and self.logic.findResults(browserNode) is None:
                self.onAnalyse()
        self.showQueuePosition()


#
# LungUSBLinesLogic
#


class LungUSBLinesLogic(ScriptedLoadableModuleLogic):
    """Thin wrapper over LungUSBLinesLib for slicer.mrmlScene; usable from the Python console:

    logic = slicer.util.getModuleLogic("LungUSBLines")
    loaded = logic.loadClip("/path/to/clip.mp4")   # loaded.clip (engine Clip), loaded.nodes
    results = logic.analyseClip(loaded.nodes.browser, "/models/bline2.pt", "/models/seg.pt")
    results.record                                  # the clip's scores (clips.csv fields)
    logic.showResults(results); logic.jumpToTopFrame(results)
    """

    LAST_FOLDER_SETTING = "LungUSBLines/LastFolder"
    # The engine's own reading of recently opened clips (with the fan it found or read from a
    # sidecar), so analysis uses it rather than re-detecting the fan on the sequence's frames.
    KEPT_CLIPS = 4

    def __init__(self):
        ScriptedLoadableModuleLogic.__init__(self)
        self._loadedClips = {}  # browser node ID -> lungus Clip
        self._analyzers = None

    def getParameterNode(self):
        return LungUSBLinesParameterNode(super().getParameterNode())

    def loadClip(self, path, progressCallback=None):
        """Read a clip with the engine and add it to the scene as a sequence with its browser."""
        from LungUSBLinesLib.clips import load_clip

        logging.info(f"LungUS B-lines: opening {path}")
        loaded = load_clip(slicer.mrmlScene, path, progress=progressCallback)
        qt.QSettings().setValue(self.LAST_FOLDER_SETTING, os.path.dirname(os.path.abspath(path)))
        self._loadedClips[loaded.nodes.browser.GetID()] = loaded.clip
        while len(self._loadedClips) > self.KEPT_CLIPS:
            self._loadedClips.pop(next(iter(self._loadedClips)))
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
            from LungUSBLinesLib.views import show_clip_view

            show_clip_view(layoutManager.layoutLogic())  # the user's layout stays when it has Red
        slicer.util.setSliceViewerLayers(background=proxyNode, foreground=None, label=None, fit=True)
        slicer.modules.sequences.setToolBarActiveBrowserNode(browserNode)

    # ------------------------------------------------------------------ analysis
    def startAnalysis(self, browserNode, classifierPath, segmenterPath=None, device="auto", explain=None):
        """Start analysing the clip of ``browserNode`` in a background process (`lungus analyse`),
        so Slicer stays responsive; returns its AnalysisJob: ``poll()`` it from a timer
        (``progress``), ``cancel()`` it, and once it has ended ``finish()`` records the results
        beside the clip (AnalysisNodes; None if cancelled; an error if the clip was closed)."""
        from LungUSBLinesLib.analysis_job import AnalysisJob, AnalysisRequest
        from LungUSBLinesLib.processes import default_python

        request = AnalysisRequest(
            classifierPath or None, segmenterPath or None, device=device or "auto", explain=explain or None
        )
        job = AnalysisJob(
            slicer.mrmlScene,
            browserNode,
            request,
            clip=self._loadedClips.get(browserNode.GetID()) if browserNode is not None else None,
            python=default_python(),
            launch=self.launchEngineProcess,
        )
        logging.info(f"LungUS B-lines: analysing {browserNode.GetName()} in a background process")
        return job.start()

    def startExplanationCheck(self, classifierPath):
        """Start finding which explanation methods the classifier file supports, in a background
        process; returns its ExplanationCheck: ``poll()`` it from a timer, ``choices()`` to offer."""
        from LungUSBLinesLib.explanation_check import ExplanationCheck
        from LungUSBLinesLib.processes import default_python

        return ExplanationCheck(classifierPath, python=default_python(), launch=self.launchEngineProcess).start()

    @staticmethod
    def launchEngineProcess(arguments, environment, cwd):
        """Start an engine process with Slicer's startup environment (what PythonSlicer needs)."""
        return slicer.util.launchConsoleProcess(arguments, updateEnvironment=environment, cwd=cwd)

    def analyseClip(
        self,
        browserNode,
        classifierPath,
        segmenterPath=None,
        device="auto",
        explain=None,
        progressCallback=None,
        cancelled=None,
    ):
        """Analyse the clip of ``browserNode`` in this process and record the results beside it
        (replacing earlier ones); for scripts: it blocks until done (the panel uses
        startAnalysis). Models load once and are kept for the next clip.
        ``progressCallback(done, total, message)`` (lungus.progress); ``cancelled()`` returning True stops the analysis
        (lungus.errors.Cancelled). Returns the AnalysisNodes."""
        from LungUSBLinesLib.analysis import AnalyzerCache, analyse_sequence
        from LungUSBLinesLib.results import add_analysis_to_scene

        if self._analyzers is None:
            self._analyzers = AnalyzerCache()
        if progressCallback is not None:
            progressCallback(0, 1, "loading the models")
        analyzer = self._analyzers.get(classifierPath or None, segmenterPath or None, device=device or "auto")
        sequenceNode = browserNode.GetMasterSequenceNode()
        analysis = analyse_sequence(
            analyzer,
            sequenceNode,
            clip=self._loadedClips.get(browserNode.GetID()),
            explain=explain or None,
            progress=progressCallback,
            cancel=cancelled,
        )
        return add_analysis_to_scene(slicer.mrmlScene, browserNode, analysis)

    @staticmethod
    def isCancellation(error):
        from LungUSBLinesLib.analysis import is_cancellation

        return is_cancellation(error)

    def findResults(self, browserNode):
        """The results recorded for the clip of ``browserNode`` (AnalysisNodes), or None."""
        if browserNode is None:
            return None
        from LungUSBLinesLib.results import find_analysis

        return find_analysis(slicer.mrmlScene, browserNode)

    def resultsDescription(self, nodes):
        from LungUSBLinesLib.results import describe_analysis

        return describe_analysis(nodes.record)

    def curveTitles(self, nodes):
        """(curve key, title) of the charts the results hold, in display order."""
        from LungUSBLinesLib.curves import CURVES

        return [(spec.key, spec.title) for spec in CURVES if spec.key in nodes.charts]

    def showResults(self, nodes, curve=None, showSegmentation=True, showHeatmap=True):
        """The clip with its segmentation (label layer) and heat map (foreground), and the chosen
        curve in a plot view below it."""
        from LungUSBLinesLib.review import find_mask_review, show_review
        from LungUSBLinesLib.views import show_result_layers, show_results_views

        show_result_layers(slicer.mrmlScene, nodes, segmentation=showSegmentation, heatmap=showHeatmap)
        review = find_mask_review(slicer.mrmlScene, nodes.browser)
        if review is not None:  # the masks under review take the place of the model's
            show_review(slicer.mrmlScene, review, visible=showSegmentation)
        chart = nodes.charts.get(curve) or next(iter(nodes.charts.values()), None)
        layoutManager = slicer.app.layoutManager()
        if chart is None or layoutManager is None:
            return
        if show_results_views(layoutManager.layoutLogic(), slicer.app.applicationLogic(), chart):
            slicer.util.resetSliceViews()
        slicer.modules.sequences.setToolBarActiveBrowserNode(nodes.browser)

    def jumpToTopFrame(self, nodes):
        from LungUSBLinesLib.results import jump_to_frame

        return jump_to_frame(nodes.browser, nodes.top_frame)

    def saveResults(self, nodes, folder):
        from LungUSBLinesLib.results import save_analysis

        return save_analysis(nodes, folder)

    def saveScene(self, path):
        from LungUSBLinesLib.storage import save_scene

        return save_scene(slicer.mrmlScene, path)

    # ------------------------------------------------------------------ review
    REVIEWER_SETTING = "LungUSBLines/Reviewer"

    def reviewerName(self):
        """The reviewer's name as last typed (kept in Slicer's settings, not in the scene)."""
        return str(qt.QSettings().value(self.REVIEWER_SETTING, ""))

    def setReviewerName(self, name):
        qt.QSettings().setValue(self.REVIEWER_SETTING, name)

    def labelChoices(self, scheme):
        """The classes a verdict of ``scheme`` chooses from, in order (keys 1, 2, ...)."""
        from LungUSBLinesLib.review import verdict_labels

        return verdict_labels(scheme)

    def reviewScheme(self, browserNode, entry=None):
        """The label scheme of the clip's verdict: the model's task (None until it is known)."""
        from LungUSBLinesLib.review import clip_opinion

        return clip_opinion(slicer.mrmlScene, browserNode, entry).scheme

    def recordReview(self, browserNode, folder, reviewer, label=None, comment="", entry=None):
        """Record a verdict on the clip of ``browserNode`` (``label`` None: agree with the model) and
        its corrected masks in the review folder ``folder``; returns the SavedReview."""
        from LungUSBLinesLib.review import clip_verdict, find_mask_review, save_review

        verdict = clip_verdict(slicer.mrmlScene, browserNode, reviewer, label, comment=comment, entry=entry)
        return save_review(folder, verdict, find_mask_review(slicer.mrmlScene, browserNode))

    def editMasks(self, browserNode):
        """The clip's masks as a segmentation sequence, shown in place of the model's and set up in
        the Segment Editor (select that module next); returns the MaskReview."""
        from LungUSBLinesLib.review import segment_editor_node, show_review, start_mask_review

        review = start_mask_review(slicer.mrmlScene, browserNode)
        show_review(slicer.mrmlScene, review)
        segment_editor_node(slicer.mrmlScene, review)
        return review

    def markFrameReviewed(self, browserNode):
        """Mark the frame on show reviewed as it is; returns its number."""
        from LungUSBLinesLib.review import start_mask_review

        return start_mask_review(slicer.mrmlScene, browserNode).mark_reviewed()

    def reviewDescription(self, browserNode, folder):
        from LungUSBLinesLib.review import review_summary

        return review_summary(slicer.mrmlScene, browserNode, folder)

    def openQueue(self, path):
        """A QueueWalker over a review queue CSV (`lungus review-queue --out`)."""
        from LungUSBLinesLib.review import QueueWalker

        return QueueWalker.from_csv(path)

    def goToClip(self, walker, browserNode):
        """Move ``walker`` to the clip of ``browserNode`` when it is queued; returns its entry or None."""
        from LungUSBLinesLib.review import clip_file

        try:
            return walker.go_to(clip_file(browserNode))
        except Exception:  # noqa: BLE001 - a clip not read from a file is simply not queued
            return None

    def loadedBrowser(self, clip):
        """The browser of the clip file ``clip`` if it is open in the scene, else None."""
        from LungUSBLinesLib.review import loaded_browser

        return loaded_browser(slicer.mrmlScene, clip)


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
        from LungUSBLinesLib.selftest import self_test_skip_reason

        self.setUp()
        self.test_ParameterNodeKeepsThePanelChoices()
        skipReason = self_test_skip_reason()  # a self-test installs nothing: no network
        if skipReason:
            self.delayDisplay(skipReason)
            return
        self.setUp()
        self.test_OpenClipAsSequence()
        self.setUp()
        self.test_SeqNrrdFromLungusOpensWithSlicerReader()
        self.setUp()
        self.test_AnalyseClipRecordsResultsThatPlayWithIt()
        self.setUp()
        self.test_ReviewKeepsAVerdictAndTheReviewedMasks()

    def test_ParameterNodeKeepsThePanelChoices(self):
        self.delayDisplay("The panel's choices are kept in the scene's parameter node")
        parameters = LungUSBLinesLogic().getParameterNode()
        self.assertEqual((parameters.device, parameters.explanationMethod), ("auto", ""))
        parameters.device = "cpu"
        parameters.explanationMethod = "gradcam"
        self.assertEqual(parameters.parameterNode.GetParameter("device"), "cpu")
        self.assertEqual(LungUSBLinesLogic().getParameterNode().explanationMethod, "gradcam")
        with self.assertRaises(ValueError):
            parameters.device = "tpu"  # not one of the choices
        self.delayDisplay("Test passed")

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

    def test_AnalyseClipRecordsResultsThatPlayWithIt(self):
        from LungUSBLinesLib.selftest import self_test_skip_reason

        skipReason = self_test_skip_reason(with_torch=True)
        if skipReason:
            self.delayDisplay(skipReason)
            return
        from lungus.infer.recipes import random_model_file

        self.delayDisplay("Analyse a clip with untrained tiny models and review the results")
        folder = slicer.util.tempDirectory("LungUSBLinesTest")
        classifier = random_model_file(
            os.path.join(folder, "classifier.pt"),
            "bline2",
            "frame_cnn",
            seed=1,
            size=32,
            frames=4,
            model_args={"width": 4},
            name="selftest-cls",
        )
        segmenter = random_model_file(
            os.path.join(folder, "segmenter.pt"),
            "seg",
            "unet_small",
            size=32,
            model_args={"width": 4, "levels": 2},
            name="selftest-seg",
        )
        path, frames = self._writeTestClip("LungUSBLinesAnalysisTest.seq.nrrd")
        logic = LungUSBLinesLogic()
        loaded = logic.loadClip(path)
        fractions = []
        nodes = logic.analyseClip(
            loaded.nodes.browser,
            classifier,
            segmenter,
            device="cpu",
            explain="gradcam",
            progressCallback=lambda done, total, message: fractions.append(done / total),
        )
        self.assertEqual(fractions[-1], 1.0)
        self.assertEqual(nodes.mask_sequence.GetNumberOfDataNodes(), 5)
        self.assertTrue(loaded.nodes.browser.IsSynchronizedSequenceNodeID(nodes.mask_sequence.GetID()))
        self.assertEqual(set(nodes.charts), {"p_blines", "bline_count"})
        self.assertIn(nodes.record["pred"], ("absent", "present"))
        logic.showResults(nodes, curve="p_blines")
        from LungUSBLinesLib.views import clip_view, current_views

        # Whatever the layout: the clip in Red, axial, and the chosen curve in every plot view.
        layoutLogic = slicer.app.layoutManager().layoutLogic()
        self.assertEqual(clip_view(layoutLogic).GetOrientation(), "Axial")
        plotViews = [v for v in current_views(layoutLogic) if v.IsA("vtkMRMLPlotViewNode")]
        self.assertTrue(plotViews)
        for plotView in plotViews:
            self.assertEqual(plotView.GetPlotChartNodeID(), nodes.charts["p_blines"].GetID())
        self.assertEqual(logic.jumpToTopFrame(nodes), nodes.top_frame)
        self.assertEqual(loaded.nodes.browser.GetSelectedItemNumber(), nodes.top_frame)
        self.assertEqual(
            logic.findResults(loaded.nodes.browser).scores_table.GetID(), nodes.scores_table.GetID()
        )
        written = logic.saveResults(nodes, folder)
        self.assertTrue(os.path.isfile(written["masks"]) and os.path.isfile(written["clip_scores"]))
        self.delayDisplay("Test passed")

    def test_ReviewKeepsAVerdictAndTheReviewedMasks(self):
        import numpy as np

        from lungus.review.store import ReviewFolder

        self.delayDisplay("Review a clip: masks in the Segment Editor, a verdict into a review folder")
        path, frames = self._writeTestClip("LungUSBLinesReviewTest.seq.nrrd")
        logic = LungUSBLinesLogic()
        browserNode = logic.loadClip(path).nodes.browser
        review = logic.editMasks(browserNode)  # no analysis: the review starts from empty masks
        editorNode = slicer.mrmlScene.GetSingletonNode("SegmentEditor", "vtkMRMLSegmentEditorNode")
        self.assertEqual(editorNode.GetSegmentationNode().GetID(), review.proxy.GetID())
        browserNode.SetSelectedItemNumber(2)
        self.assertEqual(logic.markFrameReviewed(browserNode), 2)
        folder = slicer.util.tempDirectory("LungUSBLinesReviewTest")
        from LungUSBLinesLib.review import clip_verdict, save_review

        verdict = clip_verdict(slicer.mrmlScene, browserNode, "selftest", "absent", scheme="bline2")
        saved = save_review(folder, verdict, review)
        self.assertEqual(saved.reviewed_frames, (2,))
        [row] = ReviewFolder(folder).rows()
        self.assertEqual((row["expert_selftest"], row["mask"]), ("absent", "masks/LungUSBLinesReviewTest.seq.nrrd"))
        self.assertTrue(np.all(review.corrected_masks()[[0, 1, 3, 4]] == 255))
        self.delayDisplay("Test passed")

