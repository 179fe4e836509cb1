# The two commands: `make demo` and `make test`. Each sets up .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Exactly these: pip takes them from local disk on the development machines.
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: demo test lint clean help

help:
	@echo "make demo   - set up .venv, then run the end-to-end demo (writes demo_out/)"
	@echo "make test   - set up .venv, then run the whole pytest suite"

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/lungus demo --out demo_out --overwrite

test: $(STAMP)
	$(PY) -m pytest Testing

lint: $(STAMP)
	$(VENV)/bin/ruff check LungUSBLines LungUSTrain LungUSInference Testing Resources

clean:
	rm -rf $(VENV) demo_out .pytest_cache
