FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=comanage.settings.production
RUN apt-get update && apt-get install -y --no-install-recommends \
      libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 fonts-dejavu-core \
      postgresql-client \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY comanage ./comanage
COPY agreements ./agreements
COPY indicators ./indicators
COPY savings ./savings
COPY adjudication ./adjudication
COPY templates ./templates
COPY manage.py gunicorn.conf.py ./
RUN pip install --no-cache-dir . && useradd --create-home comanage \
    && mkdir -p /data/media && chown comanage /data/media
# collectstatic needs settings that import cleanly: a throw-away random key (production refuses
# any published one), and endpoints that are never contacted.
RUN SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
    DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    python manage.py collectstatic --noinput
USER comanage
EXPOSE 8000
# Workers, timeouts and the access log: gunicorn.conf.py (read from /app; WEB_CONCURRENCY).
CMD ["gunicorn", "comanage.wsgi:application"]
