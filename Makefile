# Bootstraps .venv (python3.11) on first use; later targets reuse it.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: study test lab report clean distclean chromium

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name mer --display-name "Python (mer)" >/dev/null
	@touch $(STAMP)

study: $(STAMP)  ## generate SynthME, run every notebook with its synth params, build outputs/report.html
	$(BIN)/mer study  # one training seed, the test-epoch diagnostic on; mer study --seeds 3 --sweep for the rest

test: $(STAMP) chromium
	$(BIN)/python -m pytest

chromium:  ## Debian's Chromium for the browser test (tests/test_browser.py), installed when missing
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  elif command -v sudo >/dev/null 2>&1; then sudo apt-get update -qq && \
	    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else echo "make: no chromium and no way to install it: tests/test_browser.py will be skipped"; fi; }

LAB_ARGS ?=
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)  # Jupyter refuses root without it (GPU containers run as root)
lab: $(STAMP)  ## JupyterLab on notebooks/ with the kernel "Python (mer)", as root or as a user
	$(BIN)/jupyter lab notebooks $(ALLOW_ROOT) $(LAB_ARGS)

report: $(STAMP)
	$(BIN)/mer report

clean:  ## results, executed notebooks, generated data and caches (keeps .venv)
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
