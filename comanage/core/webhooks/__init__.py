"""Webhooks: an organization's HTTPS endpoints receive its named business events, signed
following the Standard Webhooks specification and delivered by Celery with bounded retries."""
