# make serve: set up and serve the example host on http://127.0.0.1:8000
# make test:  set up, lint (ruff), type-check (mypy) and run the test suite
# make bench: every benchmark in bench/, one after the other (bench/RESULTS.md)
PYTHON ?= python3
VENV ?= .venv
DATA ?= hepcore-data
PORT ?= 8000
BIN = $(VENV)/bin

.PHONY: serve serve-asgi test bench setup venv-deps system-deps clean

setup: venv-deps $(VENV)/.installed

# Debian's python3 makes venvs only with python3-venv (ensurepip).
venv-deps:
	@$(PYTHON) -c "import ensurepip" >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; \
	  else echo "python3 cannot make a venv: install python3-venv"; exit 1; fi; }

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

serve: setup
	$(BIN)/hepcore --data $(DATA) demo --port $(PORT)
	$(BIN)/hepcore --data $(DATA) serve --port $(PORT) --app-dir examples/host --factory app:get_app

serve-asgi: setup
	$(BIN)/hepcore --data $(DATA) demo --port $(PORT)
	$(BIN)/hepcore --data $(DATA) serve --asgi --port $(PORT) --app-dir examples/host --factory app:get_app

test: setup system-deps
	$(BIN)/ruff check --quiet .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

# System packages some tests drive:
# openssl (test certificates), headless Chromium (the paste reader page),
# nginx (the deployment test) and strace (the durability tests watch disk
# syncs). Installed when we can (root with apt-get); otherwise those tests
# skip, unless HEPCORE_REQUIRE_BROWSER=1, HEPCORE_REQUIRE_NGINX=1,
# HEPCORE_REQUIRE_OPENSSL=1 and HEPCORE_REQUIRE_STRACE=1 (as in CI) make them fail.
system-deps:
	@missing=""; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	command -v strace >/dev/null 2>&1 || missing="$$missing strace"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "not installed:$$missing; the tests that need them will skip"; fi; \
	fi

bench: setup
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/uploader.py
	$(BIN)/python bench/paste.py
	$(BIN)/python bench/cdn.py
	$(BIN)/python bench/images.py
	$(BIN)/python bench/webhooks.py

clean:
	rm -rf $(VENV) $(DATA)
