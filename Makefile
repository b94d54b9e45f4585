# albumgan: `make demo` trains the modern preset on the embedded synthetic covers; `make test` tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= cpu,jax,dev      # GPU machines: make demo EXTRAS=gpu,dev (JAX with CUDA 13)
DEMO_STEPS ?= 1200

.PHONY: venv demo test test-all bench lint clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[$(strip $(EXTRAS))]'
	touch $@

demo: venv
	$(VENV)/bin/albumgan train --config modern --dataset=synthetic \
		--steps=$(DEMO_STEPS) --eval_every=300 --name=demo
	@run=$$(ls -d runs/*-demo | sort | tail -n 1); \
	$(VENV)/bin/albumgan report run $$run > /dev/null; \
	echo ""; echo "Results in $$run:"; \
	echo "  sample grids:  $$run/samples/  (latest: $$(ls $$run/samples | tail -n 1))"; \
	echo "  metrics:       $$run/metrics.jsonl  (losses; KID/FID every 300 steps)"; \
	echo "  best KID:      $$run/best.json"; \
	echo "  generator:     $$run/generator.keras"; \
	echo ""; echo "Report (open in a browser): $$run/report/index.html  (Markdown: report.md)"; \
	echo ""; echo "Next:"; \
	echo "  $(VENV)/bin/albumgan sample $$run --n 64   (64 more images)"; \
	echo "  $(VENV)/bin/albumgan train --config smoke --steps=50   (another run)"; \
	echo "  $(VENV)/bin/albumgan sweep run smoke   (a sweep, then its leaderboard)"

# The whole suite on TensorFlow, then the trainer's contract tests again on JAX (on the CPU).
# On as many pytest-xdist workers as there are cores; the TensorFlow part hands out a test file per
# worker at a time (--dist loadfile), so that a file's session and module fixtures (a study,
# trained runs) are built once; the JAX part's tests have none and go one by one. XDIST= runs
# serially. Both parts share one albumgan cache (the synthetic set is generated once) and one JAX
# compilation cache, removed at the end (tests/conftest.py makes its own when run alone).
XDIST ?= -n auto
BY_FILE := $(if $(strip $(XDIST)),--dist loadfile)
TEST_ENV = TF_CPP_MIN_LOG_LEVEL=2 ALBUMGAN_TEST_CACHE=$$tmp/albumgan JAX_COMPILATION_CACHE_DIR=$$tmp/jax
test: venv
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && mkdir "$$tmp/albumgan" "$$tmp/jax" && \
	set -x && $(TEST_ENV) KERAS_BACKEND=tensorflow $(PY) -m pytest -q $(XDIST) $(BY_FILE) && \
	$(TEST_ENV) KERAS_BACKEND=jax $(PY) -m pytest -q -m backend_contract $(XDIST)

test-all: venv
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && mkdir "$$tmp/albumgan" "$$tmp/jax" && \
	set -x && $(TEST_ENV) KERAS_BACKEND=tensorflow $(PY) -m pytest -q -m '' $(XDIST) $(BY_FILE) && \
	$(TEST_ENV) KERAS_BACKEND=jax $(PY) -m pytest -q -m backend_contract $(XDIST)

bench: venv
	TF_CPP_MIN_LOG_LEVEL=2 $(PY) benchmarks/train_throughput.py --quick

lint: venv
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache
