# Pulse production image: one image for web (gunicorn), worker, beat and migrations.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

WORKDIR /app
RUN useradd --create-home --uid 10001 pulse

COPY pyproject.toml README.md ./
COPY config ./config
COPY wellbeing ./wellbeing
COPY checkins ./checkins
COPY notifications ./notifications
COPY templates ./templates
COPY static ./static
COPY locale ./locale
COPY manage.py ./
RUN pip install --upgrade pip && pip install .

# Static files are collected at build time with throwaway settings values; the real ones come
# from the environment at run time.
RUN SECRET_KEY=build-only-not-secret-build-only-not-secret-build-only-xx \
    DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    ALLOWED_HOSTS=localhost PULSE_DATA_DIR=/app/data \
    python manage.py collectstatic --no-input -v 0 \
    && chown -R pulse /app

USER pulse
ENV PULSE_DATA_DIR=/app/data
EXPOSE 8000
CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--logger-class", "config.log_redaction.RedactingGunicornLogger"]
