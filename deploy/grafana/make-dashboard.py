#!/usr/bin/env python3
"""Writes deploy/grafana/ordersum.json (run after editing the panels here)."""
import json, pathlib

DS = {"type": "prometheus", "uid": "${datasource}"}
panels, y = [], 0


def panel(title, exprs, unit="short", kind="timeseries", w=12, h=8, legend=None):
    global y
    x = 0 if not panels or panels[-1]["gridPos"]["x"] + panels[-1]["gridPos"]["w"] + w > 24 \
        else panels[-1]["gridPos"]["x"] + panels[-1]["gridPos"]["w"]
    if x == 0 and panels:
        y = panels[-1]["gridPos"]["y"] + panels[-1]["gridPos"]["h"]
    panels.append({
        "id": len(panels) + 1, "type": kind, "title": title, "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}} if kind == "timeseries" else {},
        "targets": [{"refId": chr(65 + i), "datasource": DS, "expr": e, "legendFormat": l}
                    for i, (e, l) in enumerate(exprs)],
    })


panel("Queue depth (queued jobs)", [("max(ordersum_worker_queue_depth)", "queued")], kind="stat", w=6, h=5)
panel("Jobs in flight", [("sum(ordersum_worker_jobs_in_flight)", "in flight")], kind="stat", w=6, h=5)
panel("Workers up", [('sum(up{job=~".*ordersum-worker.*"})', "workers")], kind="stat", w=6, h=5)
panel("Oldest running heartbeat", [("max(ordersum_worker_heartbeat_age_seconds)", "age")], unit="s", kind="stat", w=6, h=5)
panel("Jobs by status", [("max by (status) (ordersum_worker_jobs)", "{{status}}")])
panel("Queue depth and in flight", [("max(ordersum_worker_queue_depth)", "queued"),
                                    ("sum(ordersum_worker_jobs_in_flight)", "in flight")])
panel("Job outcomes per minute", [
    ("sum(rate(ordersum_worker_jobs_started_total[5m])) * 60", "started"),
    ("sum(rate(ordersum_worker_jobs_succeeded_total[5m])) * 60", "succeeded"),
    ("sum(rate(ordersum_worker_jobs_failed_total[5m])) * 60", "failed"),
    ("sum(rate(ordersum_worker_jobs_retried_total[5m])) * 60", "retried"),
    ("sum(rate(ordersum_worker_jobs_cancelled_total[5m])) * 60", "cancelled"),
    ("sum(rate(ordersum_worker_jobs_handed_back_total[5m])) * 60", "handed back")])
panel("Job duration p50 / p95", [
    ("histogram_quantile(0.5, sum by (le, outcome) (rate(ordersum_worker_job_duration_seconds_bucket[15m])))", "p50 {{outcome}}"),
    ("histogram_quantile(0.95, sum by (le, outcome) (rate(ordersum_worker_job_duration_seconds_bucket[15m])))", "p95 {{outcome}}")],
    unit="s")
panel("Rows written per second", [("sum by (sheet) (rate(ordersum_worker_rows_written_total[5m]))", "{{sheet}}")])
panel("Bytes stored per second", [("sum(rate(ordersum_worker_bytes_stored_total[5m]))", "stored")], unit="Bps")
panel("Failure ratio (15m)", [("sum(rate(ordersum_worker_jobs_failed_total[15m])) / clamp_min(sum(rate(ordersum_worker_jobs_started_total[15m])), 1e-9)", "failed / started")], unit="percentunit")
panel("Jobs enqueued per minute", [("sum(rate(ordersum_jobs_enqueued_total[5m])) * 60", "enqueued")])
panel("API requests per second", [("sum by (action, ret_code) (rate(ordersum_api_requests_total[5m]))", "{{action}} {{ret_code}}")])
panel("API latency p50 / p95 / p99", [
    ("histogram_quantile(0.5, sum by (le) (rate(ordersum_api_request_duration_seconds_bucket[5m])))", "p50"),
    ("histogram_quantile(0.95, sum by (le) (rate(ordersum_api_request_duration_seconds_bucket[5m])))", "p95"),
    ("histogram_quantile(0.99, sum by (le) (rate(ordersum_api_request_duration_seconds_bucket[5m])))", "p99")],
    unit="s")
panel("Webhook attempts per minute", [
    ("sum by (outcome) (rate(ordersum_webhook_deliveries_total[5m])) * 60", "{{outcome}}")])
panel("Webhook delivery latency (job end to 2xx) p50 / p99", [
    ("histogram_quantile(0.5, sum by (le) (rate(ordersum_webhook_delivery_latency_seconds_bucket[5m])))", "p50"),
    ("histogram_quantile(0.99, sum by (le) (rate(ordersum_webhook_delivery_latency_seconds_bucket[5m])))", "p99")],
    unit="s")
panel("Webhook backlog", [("max(ordersum_webhook_backlog)", "pending")])
panel("Oldest pending webhook", [("max(ordersum_webhook_oldest_pending_seconds)", "age")], unit="s")

dashboard = {
    "uid": "ordersum", "title": "ordersum", "tags": ["ordersum"], "timezone": "browser",
    "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
    "time": {"from": "now-6h", "to": "now"},
    "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus",
                             "label": "Data source", "current": {}, "hide": 0}]},
    "annotations": {"list": []},
    "panels": panels,
}
out = pathlib.Path(__file__).resolve().parent / "ordersum.json"
out.write_text(json.dumps(dashboard, indent=2) + "\n")
print(out)
