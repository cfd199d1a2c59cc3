# Two targets do all the set-up: `make demo` (install + run against the sandbox) and `make test`.
PYTHON ?= python3
MULTITOOL := node_modules/@microsoft/sarif-multitool-linux/Sarif.Multitool
# Test files run on parallel workers, each file whole on one worker (`loadfile`): several files
# share one module- or session-scoped run of the CLI, which must not run once per worker. Most
# tests wait on sockets and emulator clocks, so more workers than cores pays off.
TEST_WORKERS ?= 4

.PHONY: demo test tools lint bench

demo:
	$(PYTHON) -m pip install .
	scangate run --policy examples/policies/cyberorigen.yml --sandbox

tools:
	$(PYTHON) -m pip install -e '.[test,lint]'
	npm install --no-audit --no-fund
	# npm no longer runs the package's own install script that marks the binary executable.
	chmod u+x $(MULTITOOL)

test: tools
	$(PYTHON) -m pytest -n $(TEST_WORKERS) --dist loadfile

lint:
	ruff check src tests benchmarks tools
	ruff format --check src tests benchmarks tools
	mypy

bench:
	$(PYTHON) benchmarks/endtoend.py
	$(PYTHON) benchmarks/reports.py
	$(PYTHON) benchmarks/polling.py
	$(PYTHON) benchmarks/startup.py
	$(PYTHON) benchmarks/matrix.py
