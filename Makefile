# The two commands: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Exactly these: pip takes them from local disk on the development machines.
TORCH  := torch==2.14.1 torchvision==0.29.1

# The Slicer releases the extension supports, each reproduced by .venv-slicer-RELEASE: Python 3.12
# (Slicer's is 3.12.10) with the numpy, pydicom and pillow that release bundles, the nearest
# slicer-core on PyPI (none is built from 5.10: 5.11.0.2 is the first preview after it), and the
# engine's other torch-free requirements installed the way the module installs them, under a
# constraints file pinning the bundled ones. Keep the pins in step with
# LungUSBLinesLib.dependencies.SLICER_RELEASES (a test checks). No torch there: the torch tests skip.
SLICER_RELEASES := 5.10 5.12
BUNDLED_5.10    := numpy==2.0.2 pydicom==2.4.4 pillow==11.2.1
SLICER_CORE_5.10 := slicer-core==5.11.0.2
BUNDLED_5.12    := numpy==2.4.6 pydicom==3.0.2 pillow==12.2.0
SLICER_CORE_5.12 := slicer-core==5.12.4.0
# Slicer bundles packaging too; the dependency checker imports it.
RELEASE_TOOLS   := packaging 'pytest>=8' 'pytest-timeout>=2.2' 'jsonschema>=4'
RELEASE_TESTS   := Testing/bridge Testing/lungus/io Testing/lungus/data/labels/test_data_label_images.py \
                   Testing/lungus/review/test_review_store.py Testing/lungus/review/test_review_masks.py \
                   Testing/cli/test_cli_info_convert.py Testing/test_extension_index.py
# pyenv's 3.12 first, then any python3.12 on PATH; PY312=/path/to/python3.12 overrides both.
PY312 ?= $(firstword $(wildcard $(shell pyenv prefix 3.12 2>/dev/null)/bin/python3.12) $(shell command -v python3.12 2>/dev/null))
RELEASE_STAMPS  := $(foreach release,$(SLICER_RELEASES),.venv-slicer-$(release)/.installed)

.PHONY: demo test test-slicer-releases lint fuzz clean help

help:
	@echo "make demo                 - set up .venv, then run the end-to-end demo (writes demo_out/)"
	@echo "make test                 - set up .venv, then run the whole pytest suite and test-slicer-releases"
	@echo "make test-slicer-releases - torch-free tests in one environment per supported Slicer release"
	@echo "make fuzz                 - FUZZ_INPUTS (10000) mutated inputs per reader family -> fuzz_results.json"

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

.venv-slicer-%/.installed: pyproject.toml Makefile LungUSBLines/LungUSBLinesLib/dependencies.py
	@if [ -z "$(PY312)" ] || [ ! -x "$(PY312)" ]; then \
	  echo "make: no Python 3.12 found for the Slicer $* environment: run 'pyenv install 3.12'" \
	       "or pass PY312=/path/to/python3.12" >&2; exit 1; fi
	@$(PY312) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' || \
	  { echo "make: $(PY312) is not Python 3.12" >&2; exit 1; }
	rm -rf .venv-slicer-$*
	$(PY312) -m venv .venv-slicer-$*
	.venv-slicer-$*/bin/python -m pip install -q $(BUNDLED_$*) $(SLICER_CORE_$*) $(RELEASE_TOOLS)
	PYTHONPATH=LungUSBLines .venv-slicer-$*/bin/python -m LungUSBLinesLib.dependencies \
	  --constraints .venv-slicer-$*/slicer-bundled-constraints.txt > .venv-slicer-$*/pip-arguments.txt
	.venv-slicer-$*/bin/python -m pip install -q $$(cat .venv-slicer-$*/pip-arguments.txt)
	touch $@

# The stamps are files, not intermediates: make must keep them.
.SECONDARY: $(RELEASE_STAMPS)

test-slicer-releases: $(foreach release,$(SLICER_RELEASES),test-slicer-$(release))

test-slicer-%: .venv-slicer-%/.installed
	@echo "== Slicer $*: Python 3.12, $(BUNDLED_$*), no torch"
	LUNGUS_SLICER_RELEASE=$* PYTHONPATH=LungUSBLines .venv-slicer-$*/bin/python \
	  -m pytest -q -p no:cacheprovider $(RELEASE_TESTS)

demo: $(STAMP)
	$(VENV)/bin/lungus demo --out demo_out --overwrite

test: $(STAMP) test-slicer-releases
	$(PY) -m pytest Testing

# Not part of `make test` (about 5 minutes on two cores; docs/testing.md#fuzzing). Failing inputs are copied to fuzz_findings/.
FUZZ_INPUTS ?= 10000
fuzz: $(STAMP)
	PYTHONPATH=LungUSBLines $(PY) Testing/fuzz/harness.py --inputs $(FUZZ_INPUTS) \
	  --out fuzz_results.json --keep fuzz_findings

lint: $(STAMP)
	$(VENV)/bin/ruff check LungUSBLines LungUSTrain LungUSInference Testing Resources

clean:
	rm -rf $(VENV) .venv-slicer-* demo_out .pytest_cache
