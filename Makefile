# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
# pyspark is published as an sdist only: uv rebuilds it (~1 min, ~1.3 GB of cache) at every
# install, the test venvs included. It is built once into this wheelhouse and every uv call
# of the setup and of the tests finds it there (UV_FIND_LINKS).
WHEELHOUSE ?= $(HOME)/.cache/cluster-pack-wheels
export UV_FIND_LINKS := $(WHEELHOUSE)
PYSPARK_REQ = pyspark>=4.0,<4.1

.PHONY: demo test test-fast harness-start harness-stop bench-smoke clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv
	mkdir -p $(WHEELHOUSE)
	# a no-op when the newest matching pyspark is already a wheel there
	$(VENV)/bin/pip wheel --quiet --disable-pip-version-check --no-deps --no-cache-dir \
		--find-links $(WHEELHOUSE) --wheel-dir $(WHEELHOUSE) '$(PYSPARK_REQ)'
	$(VENV)/bin/uv pip install --quiet --python $(PY) -e '.[test]'
	touch $@

demo:  ## set up, pack this demo's venv and run its job with the local runner
	PYTHON=$(PYTHON) examples/demo/run_demo.sh

test: $(VENV)/.installed  ## set up (incl. the Hadoop harness) and run every test
	$(PY) -m ruff check src tests
	$(PY) -m mypy
	bash .ci/install-harness.sh
	PYTHON=$(PY) bash .ci/install-spark-s3.sh >/dev/null
	$(PY) -m pytest -ra --durations=30

test-fast: $(VENV)/.installed  ## unit + local end-to-end tests only (no JVM, no S3)
	$(PY) -m pytest -ra -m "not hdfs and not yarn and not s3 and not spark and not kerberos"

bench-smoke: $(VENV)/.installed
	# a smoke run must not overwrite the committed results
	$(PY) benchmarks/run.py --smoke --out benchmarks/work/smoke-results

clean:
	rm -rf $(VENV) .demo
