# Quick start: `make run` (embedded defaults) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run worker beat test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements/base.txt requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/dev.txt
	touch $@

install: $(VENV)/.installed

# A local trial runs with DEBUG on: a development key and plain http are then allowed. A
# deployment sets DEBUG=false and its own SECRET_KEY (README: Production set-up). RUN_PORT:
# pages from http://127.0.0.1:$(PORT) and http://localhost:$(PORT) may open websockets.
run: export DEBUG ?= true
run: export RUN_PORT = $(PORT)
run: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	@echo "Demo logins (local trials only):"
	@$(BIN)/python manage.py create_demo_users
	@echo "Open http://$(HOST):$(PORT)/  (admin: http://$(HOST):$(PORT)/admin/)"
	$(BIN)/python -m moderation_site.server -b $(HOST) -p $(PORT)

worker: install
	$(BIN)/celery -A moderation_site worker --loglevel=info --concurrency=2

beat: install
	$(BIN)/celery -A moderation_site beat --loglevel=info

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	$(BIN)/python bench/pipeline.py
	$(BIN)/python bench/matching.py
	$(BIN)/python bench/hostile.py
	@if [ -n "$$DATABASE_URL" ]; then $(BIN)/python bench/claims.py; \
	else echo "bench/claims.py needs DATABASE_URL pointing at PostgreSQL: skipped"; fi

clean:
	rm -rf var/ .pytest_cache
