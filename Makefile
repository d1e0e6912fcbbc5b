# Pipelens: `make run` starts the portal, `make test` runs every test.
# Both set up everything they need: virtualenv, packages, services, migrations.
# Paths stay relative to the checkout: it may live anywhere, spaces included.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
WITH_ENV := bash deploy/local/with-env.sh
B ?=
PYTEST_ARGS ?=
# The OCI image (deploy/docker/Containerfile): its name, tagged <git describe> and latest.
IMAGE ?= localhost/pipelens

.PHONY: help venv proto sandbox services services-down migrate test test-fast lint format run bench scale-demo check-first-run image image-smoke

help:
	@echo "make run    - start the portal with its real services and a demo login"
	@echo "make test   - run the whole test suite against the real services"
	@echo "              (PYTEST_ARGS='tests/streaming -k consumer' passes arguments to pytest)"
	@echo "make bench  - run every benchmark (B=<name> runs bench/<name>.py)"
	@echo "make scale-demo - 2 web behind nginx, 2 consumers, 2 render workers vs one of each (bench/scale.py)"
	@echo "make test-fast - the tests that need no service (seconds)"
	@echo "make lint   - ruff check and ruff format --check (CI runs it before the tests)"
	@echo "make format - apply ruff's fixes and formatting"
	@echo "make services-down - stop the local services"
	@echo "make check-first-run - clone HEAD into a mode-700 dir with a space, then make test and make run there"
	@echo "make image  - build the OCI image $(IMAGE):<version> and :latest (podman; docs/deploy.md)"
	@echo "make image-smoke - run every role from that image against the local services and check them"

$(VENV)/.installed: requirements.txt
	python3.11 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.installed

# The recipe sandbox (docs/recipes.md): bubblewrap and its own pinned virtualenv
# (outside the checkout, see the script), built when missing or when
# requirements-sandbox.txt changes, reused otherwise (the script checks in a moment).
sandbox:
	bash deploy/local/sandbox.sh

# SeaweedFS's filer notifications are protobuf: the Python code is generated
# from the vendored filer.proto by the pinned grpcio-tools, never committed
# (streaming/ingest/proto/README.md). Importing it checks that the pinned
# protobuf runtime accepts the generated code's version.
FILER_PB2 := streaming/ingest/filer_pb2.py
$(FILER_PB2): streaming/ingest/proto/filer.proto $(VENV)/.installed
	$(PY) -m grpc_tools.protoc -I streaming/ingest/proto --python_out=streaming/ingest streaming/ingest/proto/filer.proto
	$(PY) -c "import sys; sys.path.insert(0, 'streaming/ingest'); import filer_pb2" || { rm -f $@; exit 1; }

proto: $(FILER_PB2)

services: venv proto
	bash deploy/local/services.sh up

services-down:
	bash deploy/local/services.sh down

migrate: services
	$(WITH_ENV) $(PY) manage.py migrate --noinput -v 0

test: services sandbox
	bash deploy/local/install-browser.sh
	bash deploy/install-deploy-tools.sh
	bash deploy/nginx/install.sh
	$(WITH_ENV) $(PY) -m pytest $(PYTEST_ARGS)

# The tier that needs no service: parsers, layouts, renderers, import rules, settings.
test-fast: venv proto
	PIPELENS_DEVELOPMENT=1 $(PY) -m pytest -m "not integration and not e2e"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

run: migrate sandbox
	$(WITH_ENV) bash deploy/local/run.sh

bench: migrate
	$(WITH_ENV) bash bench/run.sh $(B)

# Scale-out on this machine (docs/deploy.md#scaling-out): nginx is the Debian package.
scale-demo: migrate
	bash deploy/nginx/install.sh
	$(WITH_ENV) bash bench/run.sh scale

check-first-run:
	bash deploy/local/check-first-run.sh

# One OCI image with every role (docs/deploy.md, "The image"). No registry is reachable
# here: the base is made from Debian's packages first (deploy/docker/build-base.sh,
# reused once made); podman's layer cache makes a rebuild after a code change short.
image:
	IMAGE=$(IMAGE) bash deploy/docker/build-image.sh

# The image's acceptance test: migrate, web, webapp, consume, worker, sandbox-worker and
# backfill from the image against the running local services (tests/deploy/test_image.py).
image-smoke: image services
	PIPELENS_IMAGE_SMOKE=1 PIPELENS_IMAGE=$(IMAGE):latest $(WITH_ENV) $(PY) -m pytest tests/deploy/test_image.py -v $(PYTEST_ARGS)
