# Telemetra's image: `telemetra serve` on port 8000. SQLite in /data by default; set TELEMETRA_DATABASE_URL
# for PostgreSQL. The same image runs broker workers: `telemetra worker --source mqtt`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    TELEMETRA_HOST=0.0.0.0 \
    TELEMETRA_PORT=8000 \
    TELEMETRA_DATABASE_URL=sqlite:////data/telemetra.db

WORKDIR /app
# The pinned versions the tests ran with, then the package itself.
COPY pyproject.toml constraints.txt README.md LICENSE ./
COPY telemetra ./telemetra
RUN pip install -c constraints.txt . \
    && useradd --system --uid 10001 --home-dir /data --create-home telemetra

# Not root, and nothing to write outside /data.
USER 10001
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4).status != 200)"]
CMD ["telemetra", "serve"]
