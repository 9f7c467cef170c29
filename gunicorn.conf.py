"""gunicorn's production configuration: the Dockerfile, docker-compose.yml and
``bench/load_bench.py`` run with it (gunicorn reads ``./gunicorn.conf.py`` from the working
directory; ``--config`` names it explicitly). Every value can be set from the environment.

Workers: ``WEB_CONCURRENCY`` synchronous worker processes, default twice the CPUs plus one
(gunicorn's own advice). A page spends part of its time waiting on PostgreSQL and Redis (four
round trips for a cached page); with more processes than cores another request runs meanwhile.
Each worker keeps its database connection (``DB_CONN_MAX_AGE``, 60 s by default) and its
rendered fragments (``template_fragments``, in memory): about 190 MiB each. See
docs/scaling.md for sizing.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
worker_class = "sync"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Behind the hospital's TLS proxy: keep-alive between the proxy and gunicorn is not used by
# synchronous workers; the proxy keeps the browsers' connections.
keepalive = 2
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
