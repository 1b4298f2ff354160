# careflow-webhooks image: the API (`uvicorn api.main:app`) and the worker (`python worker.py`)
# run from this one image; docker-compose.yml picks the command. Not built on these machines
# (no Docker engine here); see the header of docker-compose.yml.
FROM python:3.11.13-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Only what the package needs (keeps .venv, .data and .git out of the image even without a
# .dockerignore).
COPY pyproject.toml ./
COPY careflow ./careflow
COPY api ./api
COPY workflows ./workflows
COPY activities ./activities
COPY worker.py ./

# psycopg is the PostgreSQL driver of DATABASE_URL=postgresql+psycopg://… in the scaled-out
# stack; it is not a dependency in pyproject.toml (the embedded default uses SQLite).
# compileall: the worker's workflow sandbox imports the workflow modules afresh for every run;
# with PYTHONDONTWRITEBYTECODE and /app not writable, each run would compile them from source.
RUN pip install . "psycopg[binary]==3.3.9" \
    && python -m compileall -q /app \
    && useradd --system --create-home --uid 10001 --user-group careflow \
    && mkdir -p /var/lib/careflow \
    && chown careflow:careflow /var/lib/careflow

USER careflow

ENV CAREFLOW_DATA_DIR=/var/lib/careflow \
    CAREFLOW_API_HOST=0.0.0.0 \
    CAREFLOW_API_PORT=8000

EXPOSE 8000

CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--no-proxy-headers", "--no-access-log"]
