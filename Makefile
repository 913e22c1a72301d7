# The two commands a new user needs: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test bench clean chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/tspipe run

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

# The dashboard test drives Debian's chromium; install it when missing and possible, else that test skips.
# Said before it starts: apt-get takes a while and prints nothing.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium with apt-get for the dashboard browser test (once; about 20 s, quiet)..."; fi; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	     (apt-get install -y -q chromium >/dev/null 2>&1 || \
	      (apt-get update -q >/dev/null 2>&1 && apt-get install -y -q chromium >/dev/null 2>&1)); then \
	    echo "installed chromium for the dashboard browser test"; \
	  else echo "chromium not installed: the dashboard browser test will be skipped"; fi; \
	fi

bench: $(STAMP)
	$(BIN)/python bench/classify.py

clean:
	rm -rf $(VENV) .tspipe .pytest_cache .hypothesis
