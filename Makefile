# The two set-up commands (see README): `make demo` and `make test`.
# Both create .venv with every extra (`.[all]`) at the versions of constraints.txt first; nothing else needs installing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The torch-to-TFLite converter and what it imports, versions from constraints.txt. pip cannot resolve
# litert-torch into this environment: its litert-converter pins xdsl 0.28, which declares
# typing-extensions<4.13, while apache-tvm-ffi and pydantic need >=4.13 and >=4.16. The conversion
# never imports xdsl, and works beside typing-extensions 4.16 (tests/backends/test_tflite.py), so these go in
# without their declared dependencies.
LITERT_TORCH := litert-torch litert-converter jax jaxlib opt_einsum torchao

.PHONY: demo test install nni clean image image-check

$(BIN)/ehdnas: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==26.3
	$(BIN)/pip install --quiet -c constraints.txt -e '.[all]'
	$(BIN)/pip install --quiet --no-deps -c constraints.txt $(LITERT_TORCH)
	touch $@

install: $(BIN)/ehdnas

# The NNI bridge's own environment (README, "Inside NNI"): NNI 3.0 pins filelock<3.12 and typeguard<4.1.3 against
# constraints.txt's versions, so it cannot share .venv. The packages of the `nni` extra and what the bridge imports of
# ehdnas's dependencies (torch, numpy, scipy), at the versions of constraints-nni.txt; ehdnas itself goes in without
# its other dependencies, which the bridge does not import (~2 min).
NNI_VENV := .venv-nni
NNI_PACKAGES := torch nni pytorch-lightning numpy scipy pytest

$(NNI_VENV)/ehdnas.ready: pyproject.toml constraints-nni.txt
	$(PYTHON) -m venv $(NNI_VENV)
	$(NNI_VENV)/bin/pip install --quiet --upgrade pip==26.3
	$(NNI_VENV)/bin/pip install --quiet -c constraints-nni.txt $(NNI_PACKAGES)
	$(NNI_VENV)/bin/pip install --quiet --no-deps -e .
	touch $@

nni: $(NNI_VENV)/ehdnas.ready

# The main job on the embedded default, the cluttered digits: measure 60 small DARTS networks on ort-cpu, train
# their latency predictor, then search twice, DARTS (lambda 0) and hardware-aware (lambda 1), the predictor following
# the search; retrain, export and measure both, print them side by side and plot accuracy against latency (~11 min).
DEMO_SPACE := --space-option layers=5 --space-option channels=8 --space-option input_size=16

demo: install
	$(BIN)/ehdnas targets
	$(BIN)/ehdnas sweep --target ort-cpu --data cluttered --auto-predictor --auto-samples 60 $(DEMO_SPACE) \
		--epochs 4 --retrain-epochs 8 --lambda 0,1 --out runs/demo

# The layer contract (pyproject.toml, [tool.importlinter]) is checked before the tests; tests/bridges/test_nni.py runs
# the NNI bridge's checks in the nni environment. Two pytest workers, one test file each at a time (a file's
# module fixtures, the remote tests' tracker and its ports among them, stay in one process): a test mostly runs on
# one core, or waits on a server or device it started. One thread per torch process: the suite's servers, workers
# and jobs share the cores, and torch's threads waiting on each other made the search tests a quarter slower.
test: install nni
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/hadolint docker/Dockerfile
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -n 2 --dist loadfile

# The container image (docs/docker.md): build it, or build it, run it and check that it serves a job, on the
# container engine running here; CHECK='--dockerd DIR' starts a private dockerd first (as root, after
# `apt-get install docker.io`). Neither needs the virtual environment.
image:
	$(PYTHON) docker/check.py --build-only $(CHECK)

image-check:
	$(PYTHON) docker/check.py $(CHECK)

clean:
	rm -rf $(VENV) $(NNI_VENV) build *.egg-info
