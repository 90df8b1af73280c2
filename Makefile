# Each target is a line or two a reader could type by hand.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint types bench train browser clean

# Create the venv and install the pinned packages. mediapipe drags in opencv-contrib-python,
# which owns the same cv2/ files as opencv-python-headless: reinstall headless last so the
# cv2 we import is the headless build (tests/test_environment.py checks it).
$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	$(BIN)/pip install --disable-pip-version-check -q --force-reinstall --no-deps opencv-python-headless==4.11.0.86
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python -m server

# Debian's Chromium (and Firefox ESR) for the page tests; tests/e2e skips loudly without them.
browser:
	@command -v chromium >/dev/null 2>&1 && command -v firefox-esr >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium chromium-driver firefox-esr >/dev/null) || echo "WARNING: could not install chromium/firefox-esr; browser tests will be skipped"

# PYTHONASYNCIODEBUG=1: a slow callback on the event loop is logged, in tests and in the servers they start.
test: install browser
	PYTHONASYNCIODEBUG=1 $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check server tests

types: install
	$(BIN)/mypy server

bench: install
	$(BIN)/python -m tests.bench

train: install
	$(BIN)/python -m server.signs.train

clean:
	rm -rf $(VENV)
