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

# The suite must leave the working tree as it found it (tracked, untracked and ignored files alike,
# apart from the tools' own caches; empty folders too, which git does not show): every test works
# under its own tmp_path.
TREE_STATE = { git status --porcelain --ignored | grep -v -E '(^!! |/)(\.venv|__pycache__|\.pytest_cache|\.hypothesis|[^/]*\.egg-info)/'; \
  find . \( -path ./.venv -o -path ./.git -o -path ./.hypothesis -o -path ./.pytest_cache \) -prune -o -type d -empty -print; } 2>/dev/null | sort

test: $(STAMP) chromium
	@$(TREE_STATE) > $(VENV)/.tree-before
	$(BIN)/python -m pytest -q
	@$(TREE_STATE) > $(VENV)/.tree-after
	@diff -u $(VENV)/.tree-before $(VENV)/.tree-after >/dev/null || \
	  { echo "make test: the suite changed the working tree (git status before -> after):"; \
	    diff -u $(VENV)/.tree-before $(VENV)/.tree-after | tail -n +3; exit 1; }

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
