# Two commands do all set-up on a fresh machine with Python 3.11+:
#   make demo   runs Herald once on the bundled demo config (console output)
#   make test   runs the test suite
# Both create .venv and install the pinned requirements when needed.
PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: demo demo-reset test bench-leads bench-smoke venv
venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Herald needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

demo: $(STAMP)
	$(VENV)/bin/python run_bot.py --config config/demo.yaml once

demo-reset:
	rm -f data/demo.db data/demo.db-wal data/demo.db-shm data/demo.db.lock

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q

bench-leads: $(STAMP)
	$(VENV)/bin/python bench/leads.py

# Every benchmark once at a tiny size: fails only when one no longer runs.
bench-smoke: $(STAMP)
	$(VENV)/bin/python bench/smoke.py
