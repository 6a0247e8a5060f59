# tinysqueeze: every target sets itself up (a virtual environment in .venv) on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup test test-torch gradcheck summary clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

gradcheck: $(STAMP)
	$(PY) -m tinysqueeze gradcheck

summary: $(STAMP)
	$(PY) -m tinysqueeze summary --model squeezenet1_0 --image-size 227

# Optional: PyTorch beside tinysqueeze (a CPU wheel), then the parity tests against it.
test-torch: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pytest tests/test_torch_parity.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
