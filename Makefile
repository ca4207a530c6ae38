# Every target that runs code bootstraps .venv from pyproject.toml first.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench lint fuzz clean sysdeps

# System tools that tests use as judges (command:Debian package); installed when missing and
# we are root (apt), otherwise their tests skip with a reason.
SYSTOOLS := strace:strace getfattr:attr tree:tree fuse-overlayfs:fuse-overlayfs dockerd:docker.io fusermount3:fuse3 chromium:chromium

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/overlaysim tour

sysdeps:
	@missing=""; for t in $(SYSTOOLS); do \
	  command -v $${t%%:*} >/dev/null 2>&1 || missing="$$missing $${t#*:}"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	      || echo "could not install$$missing: their tests will skip"; \
	  else echo "missing:$$missing (not root or no apt-get): their tests will skip"; fi; \
	fi

test: $(STAMP) sysdeps
	$(BIN)/python -m pytest -q -p no:cacheprovider tests

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run --out benchmarks/results.md

# The long campaign: all profiles, resumable (run it again to continue), reports in fuzz-out/.
# The engine against the kernel (resumable from fuzz-out), then the machine against a real
# dockerd: 2,000 random exec scripts (CI runs 200).
fuzz: $(STAMP) sysdeps
	$(BIN)/overlaysim fuzz --sequences 100000 --seed 20261128 --jobs 2 --out fuzz-out
	OVERLAYSIM_DOCKERD_EXAMPLES=2000 $(BIN)/python -m pytest -q -p no:cacheprovider \
	  tests/docker_oracle/test_random.py

lint: $(STAMP)
	$(BIN)/ruff check overlaysim tests benchmarks
	$(BIN)/mypy --strict overlaysim

clean:
	rm -rf $(VENV) build *.egg-info
