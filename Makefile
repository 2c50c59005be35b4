# make serve: set up and serve the example host on http://127.0.0.1:8000
# make test:  set up and run the test suite
# make bench: the upload benchmark, then the uploader benchmark (bench/RESULTS.md)
PYTHON ?= python3
VENV ?= .venv
DATA ?= hepcore-data
PORT ?= 8000
BIN = $(VENV)/bin

.PHONY: serve serve-asgi test bench setup clean

setup: $(VENV)/.installed

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

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/upload.py
	$(BIN)/python bench/uploader.py

clean:
	rm -rf $(VENV) $(DATA)
