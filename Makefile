# tinysqueeze: every target sets itself up (a virtual environment in .venv) on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
NOTEBOOKS_STAMP := $(VENV)/.notebooks-stamp
DIST_STAMP := $(VENV)/.dist-stamp
DATA   ?= synthetic
EPOCHS ?= 15

.PHONY: setup train-small test test-quick test-lesson test-torch gradcheck summary bench notebooks clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# The notebooks extra (jupytext, nbclient, ipykernel), for `make notebooks` and the tests of it.
$(NOTEBOOKS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[notebooks]'
	touch $(NOTEBOOKS_STAMP)

# The dist extra (mpi4py and the MPICH wheel), for training on several processes and the tests of it.
$(DIST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dist]'
	touch $(DIST_STAMP)

# The main job: SqueezeNet 1.1 from scratch at 64 px. With DATA=path/to/imagefolder it trains on
# real images instead of the built-in synthetic set. Starts afresh each time (--overwrite).
train-small: $(STAMP)
	$(PY) -m tinysqueeze train --model squeezenet1_1 --data $(DATA) --image-size 64 --epochs $(EPOCHS) \
		--out runs/train-small --overwrite
	$(PY) -m tinysqueeze evaluate --checkpoint runs/train-small/best.npz

test: $(STAMP) $(NOTEBOOKS_STAMP) $(DIST_STAMP)
	$(PY) -m pytest

# The inner loop: every module a little, without the end-to-end training runs (tests marked slow).
test-quick: $(STAMP) $(NOTEBOOKS_STAMP) $(DIST_STAMP)
	$(PY) -m pytest -m "not slow"

# The tests of one lesson's code and text: make test-lesson LESSON=1 (start, 0, 1, ..., 5b, ..., 11b, ..., 19).
test-lesson: $(STAMP) $(NOTEBOOKS_STAMP) $(DIST_STAMP)
	@test -n "$(LESSON)" || { echo "which lesson? make test-lesson LESSON=1 (start, 0-19, 5b, 11b: lessons/README.md)"; exit 2; }
	$(PY) -m pytest -m lesson$(subst start,_start,$(LESSON))

gradcheck: $(STAMP)
	$(PY) -m tinysqueeze gradcheck

summary: $(STAMP)
	$(PY) -m tinysqueeze summary --model squeezenet1_0 --image-size 227

# Optional: PyTorch beside tinysqueeze (a CPU wheel), then the parity tests against it.
test-torch: $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m pytest tests/models/test_torch_parity.py

# Speed and memory against PyTorch (installed beside tinysqueeze when this machine can: a CPU wheel).
bench: $(STAMP)
	-$(PY) -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(PY) -m tinysqueeze bench

# A Jupyter notebook of every lesson in notebooks/ (git-ignored), made from lessons/*.md, the one source.
# With the dist extra too: lesson 19's notebook starts two processes with mpiexec.
notebooks: $(NOTEBOOKS_STAMP) $(DIST_STAMP)
	$(PY) lessons/make_notebooks.py --out notebooks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
