"""LungUSTrain: label clips reviewed in Slicer, export them as a training set, and train on it.

Thin Qt layer over LungUSTrainLib (Qt-free, tested headless): widgets -> *Lib -> lungus.
Training runs as a `lungus train` subprocess of Slicer's Python (the GUI stays free), with its
log, progress and the trained model's card shown here.
"""

import logging
import os
import pathlib
from typing import Annotated

import qt
import slicer
from slicer.parameterNodeWrapper import Choice, Default, WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

from LungUSBLines import ParameterNodePanelMixin, fillComboBox
from LungUSBLinesLib import dependencies, panel
from LungUSTrainLib.sequence_export import EXPORT_FORMATS


def _number(name):
    """An int field within the Train panel's range for ``name``, with its default."""
    minimum, maximum, default = panel.TRAIN_NUMBERS[name]
    return Annotated[int, WithinRange(minimum, maximum), Default(default)]


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
Give the lung-ultrasound clips in the scene a patient and a label, export them as clip files
with a manifest the `lungus` engine reads, and train a B-line classifier on it with
`lungus train`, run beside Slicer; or retrain a reviewed model on what a reviewer said (a review
folder of LungUS B-lines). Larger trainings run the same command on a GPU machine or a
cluster (see the extension's README).
See the <a href="https://github.com/lungus-blines/SlicerLungUSBLines">extension documentation</a>.
"""
        self.parent.acknowledgementText = """
Developed as open source by the LungUS B-lines contributors.
"""


#
# LungUSTrainParameterNode
#


@parameterNodeWrapper
class LungUSTrainParameterNode:
    """The panel's choices, saved with the scene (choices and defaults: LungUSBLinesLib.panel)."""

    task: Annotated[str, Choice(panel.choice_values(panel.TASK_CHOICES))] = panel.DEFAULT_TASK
    exportFormat: Annotated[str, Choice(tuple(EXPORT_FORMATS))] = panel.DEFAULT_EXPORT_FORMAT
    trainingSetsFolder: pathlib.Path = panel.home_folder(panel.TRAINING_SETS_FOLDER)
    manifestPath: str = ""
    recipePath: str = ""
    model: str = panel.DEFAULT_TRAIN_MODEL
    labelSource: str = ""
    epochs: _number("epochs")
    size: _number("size")
    folds: _number("folds")
    seeds: _number("seeds")
    device: Annotated[str, Choice(panel.choice_values(panel.DEVICE_CHOICES))] = panel.DEFAULT_DEVICE
    reviewsFolder: str = ""
    reviewedModelPath: str = ""


#
# LungUSTrainWidget
#


class LungUSTrainWidget(ScriptedLoadableModuleWidget, VTKObservationMixin, ParameterNodePanelMixin):
    panelPaths = (
        ("manifestPathLineEdit", "manifestPath"),
        ("recipePathLineEdit", "recipePath"),
        ("reviewsFolderPathLineEdit", "reviewsFolder"),
        ("reviewedModelPathLineEdit", "reviewedModelPath"),
    )
    panelLists = (
        ("taskSelector", "task"),
        ("formatSelector", "exportFormat"),
        ("modelSelector", "model"),
        ("deviceSelector", "device"),
    )
    COLUMNS = ("Export", "Clip", "Patient", "Zone", "Label")
    USE_COLUMN, CLIP_COLUMN, PATIENT_COLUMN, ZONE_COLUMN, LABEL_COLUMN = range(5)
    POLL_INTERVAL_MS = 300

    def __init__(self, parent=None):
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self.job = None
        self.jobRunFolder = None
        self.pollTimer = None
        self._scheme = None

    def setup(self):
        ScriptedLoadableModuleWidget.setup(self)
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/LungUSTrain.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = LungUSTrainLogic()

        fillComboBox(self.ui.taskSelector, panel.TASK_CHOICES)
        self._scheme = self.ui.taskSelector.currentData
        fillComboBox(self.ui.formatSelector, [(title, suffix) for suffix, title in EXPORT_FORMATS.items()])
        fillComboBox(self.ui.deviceSelector, panel.DEVICE_CHOICES)
        self.ui.clipsTable.setColumnCount(len(self.COLUMNS))
        self.ui.clipsTable.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.ui.clipsTable.horizontalHeader().setSectionResizeMode(self.CLIP_COLUMN, qt.QHeaderView.Stretch)
        self.ui.trainingProgressBar.maximum = 100
        self.pollTimer = qt.QTimer()
        self.pollTimer.setInterval(self.POLL_INTERVAL_MS)
        self.pollTimer.connect("timeout()", self.onPoll)

        self.ui.taskSelector.connect("currentIndexChanged(int)", self.onTaskChanged)
        self.ui.refreshClipsButton.connect("clicked(bool)", self.onRefreshClips)
        self.ui.exportButton.connect("clicked(bool)", self.onExport)
        self.ui.trainButton.connect("clicked(bool)", self.onTrain)
        self.ui.cancelTrainingButton.connect("clicked(bool)", self.onCancelTraining)
        self.ui.retrainButton.connect("clicked(bool)", self.onRetrain)
        self.ui.retrainReviewerEdit.text = self.logic.reviewerName()
        self.ui.engineLabel.text = f"Engine: lungus {dependencies.engine_version()}"
        self.fillModelChoices()
        self.ui.runFolderEdit.text = self.newRunFolder()
        self.refreshClips()
        self.setupParameterNode()  # the panel's choices are saved with the scene

    def cleanup(self):
        self.removeObservers()
        if self.pollTimer is not None:
            self.pollTimer.stop()
        if self.job is not None and self.job.running:
            self.job.cancel(grace_s=5)

    def enter(self):
        ParameterNodePanelMixin.enter(self)
        self.refreshClips()

    def showParameters(self, parameters):
        if parameters.task != self._scheme:  # a loaded scene chose another task
            self._scheme = parameters.task
            self.refreshClips(keepEdits=False)

    # ------------------------------------------------------------------ labeling
    def fillModelChoices(self):
        try:
            models = self.logic.availableModels()
        except ImportError:  # no PyTorch yet: offer the default; Train installs what is missing
            models = [panel.DEFAULT_TRAIN_MODEL]
        fillComboBox(self.ui.modelSelector, [(name, name) for name in models], panel.DEFAULT_TRAIN_MODEL)

    def onRefreshClips(self):
        self.refreshClips()

    def refreshClips(self, keepEdits=True):
        """List the scene's clips with the patient, zone and label stored on each (first keeping
        what was typed in the table, unless the label scheme just changed)."""
        if keepEdits and self.ui.clipsTable.rowCount:
            self.storeTableLabels()
        entries = self.logic.labeledClips(self._scheme)
        choices = [""] + list(self.logic.labelChoices(self._scheme))
        table = self.ui.clipsTable
        table.setRowCount(len(entries))
        for row, entry in enumerate(entries):
            use = qt.QTableWidgetItem()
            use.setFlags(qt.Qt.ItemIsEnabled | qt.Qt.ItemIsUserCheckable)
            use.setCheckState(qt.Qt.Checked if entry.label else qt.Qt.Unchecked)
            table.setItem(row, self.USE_COLUMN, use)
            name = qt.QTableWidgetItem(entry.sequence.GetName())
            name.setFlags(qt.Qt.ItemIsEnabled | qt.Qt.ItemIsSelectable)
            name.setData(qt.Qt.UserRole, entry.sequence.GetID())
            table.setItem(row, self.CLIP_COLUMN, name)
            table.setItem(row, self.PATIENT_COLUMN, qt.QTableWidgetItem(entry.patient))
            table.setItem(row, self.ZONE_COLUMN, qt.QTableWidgetItem(entry.zone))
            label = qt.QComboBox()
            for choice in choices:
                label.addItem(choice)
            label.setCurrentIndex(max(0, label.findText(entry.label)))
            table.setCellWidget(row, self.LABEL_COLUMN, label)
        table.resizeColumnToContents(self.USE_COLUMN)

    def tableEntries(self, onlyTicked=False):
        """(ticked, sequence node, patient, zone, label) for each row of the table."""
        table = self.ui.clipsTable
        rows = []
        for row in range(table.rowCount):
            sequence = slicer.mrmlScene.GetNodeByID(table.item(row, self.CLIP_COLUMN).data(qt.Qt.UserRole))
            if sequence is None:
                continue  # removed from the scene since the list was made
            ticked = table.item(row, self.USE_COLUMN).checkState() == qt.Qt.Checked
            if onlyTicked and not ticked:
                continue
            rows.append(
                (
                    ticked,
                    sequence,
                    table.item(row, self.PATIENT_COLUMN).text(),
                    table.item(row, self.ZONE_COLUMN).text(),
                    table.cellWidget(row, self.LABEL_COLUMN).currentText,
                )
            )
        return rows

    def storeTableLabels(self):
        for _ticked, sequence, patient, zone, label in self.tableEntries():
            self.logic.storeLabels(sequence, self._scheme, patient, label, zone)

    def onTaskChanged(self, index):
        self.storeTableLabels()
        self._scheme = self.ui.taskSelector.currentData
        self.refreshClips(keepEdits=False)

    def onExport(self):
        from LungUSBLines import ensurePythonRequirements, showError

        if not ensurePythonRequirements():
            return
        self.storeTableLabels()
        entries = [row[1:] for row in self.tableEntries(onlyTicked=True)]
        if not entries:
            slicer.util.errorDisplay("Tick at least one clip to export.")
            return
        # A new folder under the chosen one each time: a training set is never written over.
        folder = self.logic.newOutputFolder(self.ui.outputFolderButton.directory, self._scheme)
        try:
            with slicer.util.WaitCursor():
                written = self.logic.exportTrainingSet(
                    entries, folder, self._scheme, self.ui.formatSelector.currentData
                )
        except Exception as error:
            showError("Could not export the training set.", error)
            return
        self.ui.exportLogText.plainText = written.describe()
        self.ui.manifestPathLineEdit.currentPath = str(written.manifest)

    # ------------------------------------------------------------------ training
    def newRunFolder(self):
        return str(self.logic.newOutputFolder(panel.home_folder(panel.RUNS_FOLDER), self._scheme))

    def onTrain(self):
        from LungUSBLines import ensurePythonRequirements, showError

        if not ensurePythonRequirements(withTorch=True):
            return
        try:
            # A recipe brings its own model, epochs and input size; the fields apply without one.
            recipe = self.ui.recipePathLineEdit.currentPath.strip() or None
            request = self.logic.trainRequest(
                manifest=self.ui.manifestPathLineEdit.currentPath,
                out=self.ui.runFolderEdit.text,
                task=self._scheme,
                model=None if recipe else self.ui.modelSelector.currentText,
                recipe=recipe,
                epochs=None if recipe else self.ui.epochsSpinBox.value,
                size=None if recipe else self.ui.sizeSpinBox.value,
                folds=self.ui.foldsSpinBox.value,
                seeds=self.ui.seedsSpinBox.value,
                label_source=self.ui.labelSourceEdit.text.strip() or None,
                device=self.ui.deviceSelector.currentData,
            )
            self.job = self.logic.startTraining(request)
        except Exception as error:
            showError("Could not start training.", error)
            return
        self.showTrainingStarted(request)

    def onRetrain(self):
        from LungUSBLines import ensurePythonRequirements, showError

        if not ensurePythonRequirements(withTorch=True):
            return
        try:
            request = self.logic.retrainRequest(
                reviews=self.ui.reviewsFolderPathLineEdit.currentPath,
                reviewer=self.ui.retrainReviewerEdit.text.strip(),
                model=self.ui.reviewedModelPathLineEdit.currentPath,
                out=self.ui.runFolderEdit.text,
                epochs=self.ui.epochsSpinBox.value,
                folds=self.ui.foldsSpinBox.value,
                seeds=self.ui.seedsSpinBox.value,
                device=self.ui.deviceSelector.currentData,
            )
            self.job = self.logic.startTraining(request)
        except Exception as error:
            showError("Could not start retraining.", error)
            return
        self.showTrainingStarted(request)

    def showTrainingStarted(self, request):
        self.jobRunFolder = request.out
        self.ui.trainingLogText.plainText = " ".join(self.job.arguments)
        self.ui.modelSummaryText.plainText = ""
        self.ui.trainingStatusLabel.text = "Starting (loading PyTorch, preparing the clips)..."
        self.setTraining(True)
        self.pollTimer.start()

    def onPoll(self):
        if self.job is None:
            self.pollTimer.stop()
            return
        from LungUSTrainLib.training import log_lines

        lines = self.job.poll()
        shown = log_lines(lines)  # progress lines drive the bar; the log keeps the lines people read
        if shown:
            self.ui.trainingLogText.appendPlainText("\n".join(shown))
        if self.job.progress is not None and not self.job.cancelled:  # keep "Cancelling..." shown
            self.ui.trainingProgressBar.value = int(round(100 * self.job.progress.fraction))
            self.ui.trainingStatusLabel.text = self.job.progress.message
        if not self.job.running:
            self.pollTimer.stop()
            self.onTrainingFinished()

    def onCancelTraining(self):
        if self.job is None:
            return
        self.ui.trainingStatusLabel.text = "Cancelling..."
        # The job stops as on Ctrl+C, or is ended with all it started; onPoll sees it end.
        self.job.cancel(wait=False)

    def onTrainingFinished(self):
        from LungUSBLines import showError

        job, self.job = self.job, None
        self.setTraining(False)
        self.ui.runFolderEdit.text = self.newRunFolder()
        if job.cancelled:
            self.ui.trainingStatusLabel.text = f"Cancelled; the last checkpoint is in {self.jobRunFolder}."
            return
        if not job.succeeded:
            self.ui.trainingStatusLabel.text = "Failed: " + job.error_message()
            slicer.util.errorDisplay(f"Training failed.\n\n{job.error_message()}")
            return
        try:
            result = self.logic.trainingResult(self.jobRunFolder)
        except Exception as error:
            showError("Training ended but its model could not be read.", error)
            return
        self.ui.trainingProgressBar.value = 100
        self.ui.trainingStatusLabel.text = f"Done: {result.model_path}"
        self.ui.modelSummaryText.plainText = result.describe()

    def setTraining(self, training):
        for widget in (
            self.ui.trainButton,
            self.ui.exportButton,
            self.ui.manifestPathLineEdit,
            self.ui.recipePathLineEdit,
            self.ui.modelSelector,
            self.ui.epochsSpinBox,
            self.ui.sizeSpinBox,
            self.ui.foldsSpinBox,
            self.ui.seedsSpinBox,
            self.ui.runFolderEdit,
            self.ui.taskSelector,
            self.ui.retrainButton,
        ):
            widget.enabled = not training
        self.ui.cancelTrainingButton.enabled = training
        if training:
            self.ui.trainingProgressBar.value = 0


#
# LungUSTrainLogic
#


class LungUSTrainLogic(ScriptedLoadableModuleLogic):
    """Thin wrapper over LungUSTrainLib; usable from the Python console:

    logic = slicer.util.getModuleLogic("LungUSTrain")
    logic.exportSequences(slicer.util.getNodesByClass("vtkMRMLSequenceNode"), "/data/export", ".seq.nrrd")
    written = logic.exportTrainingSet([(sequence, "P001", "R1", "present")], "/data/set", "bline2")
    job = logic.startTraining(logic.trainRequest(str(written.manifest), "/runs/r1", task="bline2", epochs=20))
    job.wait(); print(logic.trainingResult("/runs/r1").describe())
    """

    def getParameterNode(self):
        return LungUSTrainParameterNode(super().getParameterNode())

    def exportSequences(self, sequenceNodes, folder, suffix=".seq.nrrd", progressCallback=None):
        """Write each sequence as <folder>/<name><suffix>; returns one ExportResult per sequence.
        ``progressCallback(done, total, name)`` hears of each sequence written."""
        from LungUSTrainLib.sequence_export import export_sequences

        results = export_sequences(sequenceNodes, folder, suffix, progress=progressCallback)
        for result in results:
            if result.error:
                logging.warning(f"LungUS Train: {result.sequence_name} not exported: {result.error}")
        return results

    # ------------------------------------------------------------------ labels and training sets
    def labeledClips(self, scheme):
        """The scene's clip sequences with their stored patient, zone and ``scheme`` label."""
        from LungUSTrainLib.training_set import clip_sequences, read_labels

        return [read_labels(sequence, scheme) for sequence in clip_sequences(slicer.mrmlScene)]

    def labelChoices(self, scheme):
        from LungUSTrainLib.training_set import label_choices

        return label_choices(scheme)

    def storeLabels(self, sequenceNode, scheme, patient, label, zone=""):
        from LungUSTrainLib.training_set import LabeledSequence, store_labels

        store_labels(LabeledSequence(sequenceNode, patient, label, zone), scheme)

    def newOutputFolder(self, base, scheme):
        """A folder under ``base`` that does not exist yet, named after ``scheme`` and the time."""
        from LungUSBLinesLib.panel import new_output_folder

        return new_output_folder(base, scheme)

    def exportTrainingSet(self, entries, folder, scheme, suffix=".seq.nrrd"):
        """``entries``: (sequence node, patient, zone, label) each. Writes folder/clips/ and
        folder/manifest.csv; returns the TrainingSet (manifest path, exports, warnings)."""
        from LungUSTrainLib.training_set import LabeledSequence, export_training_set

        labeled = [
            LabeledSequence(sequence, patient, label, zone) for sequence, patient, zone, label in entries
        ]
        return export_training_set(labeled, folder, scheme, suffix=suffix)

    # ------------------------------------------------------------------ training
    def availableModels(self):
        """The classifier architectures `lungus train` offers (needs PyTorch: ImportError without it)."""
        from LungUSTrainLib.training import classifier_models

        return classifier_models()

    def trainRequest(self, manifest, out, task="bline2", model="frame_cnn", **options):
        """A validated `lungus train` run (LungUSError saying what is wrong)."""
        from LungUSTrainLib.training import TrainRequest

        return TrainRequest(manifest=manifest, out=out, task=task, model=model, **options).validate()

    def retrainRequest(self, reviews, reviewer, model, out, **settings):
        """A validated run that fine-tunes the reviewed ``model`` on the review folder ``reviews``
        with ``reviewer``'s labels (LungUSError saying what is wrong)."""
        from LungUSTrainLib.training import retrain_request

        return retrain_request(reviews, reviewer, model, out, **settings).validate()

    def reviewerName(self):
        """The reviewer's name the review module remembers (Slicer's settings)."""
        return str(qt.QSettings().value("LungUSBLines/Reviewer", ""))

    def startTraining(self, request):
        """Start `lungus train` with Slicer's Python (PythonSlicer) through launchConsoleProcess;
        returns the EngineProcess to poll."""
        from LungUSBLinesLib.processes import default_python
        from LungUSTrainLib.training import start_training

        def launch(arguments, environment, cwd):
            return slicer.util.launchConsoleProcess(arguments, updateEnvironment=environment, cwd=cwd)

        logging.info(f"LungUS Train: training into {request.out}")
        return start_training(request, python=default_python(), launch=launch)

    def trainingResult(self, runFolder):
        from LungUSTrainLib.training import read_training_result

        return read_training_result(runFolder)


#
# LungUSTrainTest
#


class LungUSTrainTest(ScriptedLoadableModuleTest):
    """Runs inside Slicer; the same export and training are tested headless in the repository's
    Testing/bridge."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        from LungUSBLinesLib.selftest import self_test_skip_reason

        skipReason = self_test_skip_reason()  # a self-test installs nothing: no network
        if skipReason:
            self.delayDisplay(skipReason)
            return
        self.setUp()
        self.test_ExportedClipReadsBack()
        self.setUp()
        self.test_LabeledClipsBecomeATrainingSet()

    def test_ExportedClipReadsBack(self):
        import numpy as np

        from lungus.io import read_clip
        from LungUSBLinesLib.sequences import frames_to_sequence

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

    def test_LabeledClipsBecomeATrainingSet(self):
        import numpy as np

        from lungus.data.manifests.manifest import Manifest
        from lungus.data.manifests.validation import validate_manifest
        from LungUSBLinesLib.sequences import frames_to_sequence

        self.delayDisplay("Label two clips and export them with a manifest")
        logic = LungUSTrainLogic()
        frames = (np.arange(4 * 24 * 32).reshape(4, 24, 32) % 241).astype(np.uint8)
        first = frames_to_sequence(slicer.mrmlScene, frames, "clip A", fps=10.0)
        second = frames_to_sequence(slicer.mrmlScene, frames[::-1], "clip B", fps=10.0)
        logic.storeLabels(first, "bline3", "P1", "confluent", "R2")
        self.assertEqual([c.label for c in logic.labeledClips("bline3")], ["confluent", ""])
        folder = os.path.join(slicer.util.tempDirectory("LungUSTrainSetTest"), "set")
        written = logic.exportTrainingSet(
            [(first, "P1", "R2", "confluent"), (second, "P2", "", "none")], folder, "bline3"
        )
        manifest = Manifest.load(written.manifest)
        self.assertEqual(manifest.column("bline3"), ["confluent", "none"])
        self.assertEqual([i for i in validate_manifest(manifest) if i.severity == "error"], [])
        self.delayDisplay("Test passed")
