"""The Celery peer of bench/small.sh: one task, bench/peer.py's export (the
same query through psycopg, the same two sheets through XlsxWriter) written
to a local file. Redis is the broker and the result backend.

    celery -A celery_peer worker -P prefork -c 2      (from bench/)

Settings (environment): CELERY_REDIS_URL (broker and results), CELERY_QUEUE
(default `celery`), DATABASE_URL, CELERY_PEER_DIR (where the files go).
"""
import os
import uuid

import psycopg
from celery import Celery
from celery.signals import worker_process_init, worker_process_shutdown

import peer

app = Celery("celery_peer", broker=os.environ["CELERY_REDIS_URL"], backend=os.environ["CELERY_REDIS_URL"])
app.conf.update(
    # A user after latency sets these: a child takes one task at a time
    # (no task waits behind a busy child while the other is idle), results
    # as JSON.
    worker_prefetch_multiplier=1,
    task_default_queue=os.environ.get("CELERY_QUEUE", "celery"),
    result_expires=3600,
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)

# One Postgres connection per worker process, opened when the process starts
# (as a pool would keep it), not per task.
conn = None


@worker_process_init.connect
def connect(**_):
    global conn
    conn = psycopg.connect(os.environ["DATABASE_URL"])


@worker_process_shutdown.connect
def disconnect(**_):
    if conn is not None:
        conn.close()


@app.task(name="order_summary")
def order_summary(company, start, end):
    """Writes the summary and returns its path and the rows of each sheet."""
    directory = os.environ["CELERY_PEER_DIR"]
    path = os.path.join(directory, f"order-summary-{start}-{end}-{uuid.uuid4().hex[:8]}.xlsx")
    paid, unpaid = peer.export(conn, company, start, end, path)
    return {"path": path, "paid": paid, "unpaid": unpaid}
