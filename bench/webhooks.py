"""The driver of bench/webhooks.sh: completion webhooks delivered to a local
receiver, and small jobs with and without an endpoint subscribed.

    python webhooks.py plan     DATABASE_URL PLAN.json
    python webhooks.py receive  PORT SECRETS.json RECEIVED.jsonl
    python webhooks.py run      PLAN.json KEYS API_URL RECEIVER_URL RECEIVER_PID SECRETS.json RECEIVED.jsonl
                                DATABASE_URL OUT.json
    python webhooks.py table    OUT.json

KEYS: one `company public_key private_key` a line. The API calls, their
signing and the sequential jobs are bench/small.py's. The receiver runs in a
process of its own, so that the driver's threads do not delay it; each
endpoint's URL ends in a label (/hook/<label>) by which the receiver finds
the endpoint's secret in SECRETS.json (written by `run` as it creates them).
Receipt times are time.time(), job ends webhook_events.created_at
(Postgres' clock_timestamp()): one machine, one clock. Any failed job,
unexpected answer or missing delivery stops the run with an error.
"""
import json
import os
import statistics
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from small import (
    GIVE_UP,
    ROWS,
    WINDOW,
    Api,
    BenchError,
    check_ordersum_jobs,
    load,
    now,
    ordersum_sequential,
    percentile,
    read_keys,
    save,
)

SEQUENTIAL_COMPANY = 1
BURST_COMPANIES = list(range(2, 12))
# Sequential small jobs: BLOCKS blocks of BLOCK jobs, each block run once
# without and once with an endpoint (the same windows), the order
# alternating (ABBA...) so that drift over the run falls on both.
WARMUP, BLOCK, BLOCKS = 5, 50, 4
# The burst: per company, EXPORTS jobs of one-hour windows and CANCELS more
# cancelled as soon as submitted: 10 × (90 + 10) = 1 000 job ends.
EXPORTS, CANCELS = 90, 10
BURST_WINDOW = 3600
SETTLE = 3  # seconds to wait after the last expected receipt, for duplicates


# ---------------------------------------------------------------- the plan


def plan(db_url, out):
    """Company 1's one-day windows of 1-2k rows (as bench/small.py's), and
    one-hour windows of each burst company, with the rows each must give."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        spans = {
            company: (first, last)
            for company, first, last in conn.execute(
                "SELECT company_id, extract(epoch FROM min(start_time))::bigint,"
                " extract(epoch FROM max(start_time))::bigint FROM orders GROUP BY company_id"
            )
        }

        def job(company, start, width):
            if start + width > spans[company][1] + 3600:
                raise BenchError(f"company {company}: too few seeded days for window {start}")
            paid, unpaid = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 2), count(*) FILTER (WHERE status = 1) FROM orders"
                " WHERE company_id = %s AND start_time >= to_timestamp(%s) AND start_time < to_timestamp(%s)",
                (company, start, start + width),
            ).fetchone()
            return [company, start, start + width, paid, unpaid]

        for company in [SEQUENTIAL_COMPANY, *BURST_COMPANIES]:
            if company not in spans:
                raise BenchError(f"company {company} has no orders: seed it first")
        first = spans[SEQUENTIAL_COMPANY][0]
        sequential = [job(SEQUENTIAL_COMPANY, first + step * 3600, WINDOW) for step in range(WARMUP + BLOCK * BLOCKS)]
        for company, start, end, paid, unpaid in sequential:
            if paid == 0 or unpaid == 0 or paid + unpaid not in ROWS:
                raise BenchError(f"company {company} [{start}, {end}): {paid} + {unpaid} rows, not a small job")
        burst = {
            str(c): [job(c, spans[c][0] + i * BURST_WINDOW, BURST_WINDOW) for i in range(EXPORTS + CANCELS)]
            for c in BURST_COMPANIES
        }
    save(out, {"warmup": sequential[:WARMUP], "sequential": sequential[WARMUP:], "burst": burst})
    rows = [j[3] + j[4] for jobs in burst.values() for j in jobs]
    print(f"plan: {BLOCK * BLOCKS} sequential jobs, {len(rows)} burst jobs of {min(rows)}-{max(rows)} rows",
          file=sys.stderr)


# ---------------------------------------------------------------- the receiver


def receive(port, secrets_path, received_path):
    """Answers each POST to /hook/<label> with 204 once its signature
    verifies with the label's secret (400 otherwise, which the deliverer
    retries), and appends a line to RECEIVED.jsonl: webhook-id, receipt
    time (the body read), when the connection was accepted, and from the
    body the job, its status and rows."""
    secrets, lock = {}, threading.Lock()
    out = open(received_path, "a", buffering=1)
    # Handler threads wait for the GIL in turns of the switch interval (5 ms
    # by default): with a burst's dozens of connections open, receipts came
    # up to ~80 ms late (POST p99 82 ms; 39 ms at 0.2 ms).
    sys.setswitchinterval(0.0002)

    def secret_of(label):
        with lock:
            if label not in secrets and os.path.exists(secrets_path):
                secrets.update(load(secrets_path))
            return secrets.get(label)

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # readiness, for wait_for
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received = time.time()
            _, accepted = self.client_address
            label = self.path.rsplit("/", 1)[-1]
            secret = secret_of(label)
            try:
                event = Webhook(secret).verify(body, dict(self.headers.items())) if secret else None
            except WebhookVerificationError:
                event = None
            record = {"id": self.headers.get("webhook-id"), "endpoint": label, "time": received,
                      "accepted": accepted, "verified": event is not None}
            if event is not None:
                data = event["data"]
                record.update(type=event["type"], job=data["JobId"], status=data["Status"],
                              paid=data["PaidRows"], unpaid=data["UnpaidRows"])
            with lock:
                out.write(json.dumps(record) + "\n")
            self.send_response(204 if event is not None else 400)
            self.end_headers()

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        # The default backlog (5) drops connections of a burst, which then
        # wait a second for the SYN to be sent again.
        request_queue_size = 256

        def get_request(self):
            # The time of accept() travels with the client's address.
            sock, address = super().get_request()
            return sock, (address, time.time())

    Server(("127.0.0.1", int(port)), Handler).serve_forever()


class Receipts:
    """What the receiver recorded so far (complete lines of its file)."""

    def __init__(self, path):
        self.path, self.offset, self.all = path, 0, []

    def poll(self):
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        self.all += [json.loads(line) for line in data[:end].splitlines()]
        return self.all

    def wait_for_jobs(self, job_ids):
        """Until a verified delivery of each job in job_ids arrived."""
        want, give_up = set(job_ids), now() + GIVE_UP
        while True:
            missing = want - {r.get("job") for r in self.poll() if r["verified"]}
            if not missing:
                return
            if now() > give_up:
                raise BenchError(f"no webhook for {len(missing)} of {len(want)} jobs after {GIVE_UP} s")
            time.sleep(0.05)


# ---------------------------------------------------------------- the run


def cpu_ms(receiver_pid):
    """CPU time (ms) used so far by each kind of process (utime + stime of
    /proc/<pid>/stat, by command name; the receiver and this driver apart),
    and by the whole machine ("machine": /proc/stat minus idle and iowait).
    Processes that exited meanwhile are missed (none of the servers'
    pools close connections within a block)."""
    tick, used = os.sysconf("SC_CLK_TCK"), {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        pid = int(entry)
        name = ("receiver" if pid == receiver_pid else "driver" if pid == os.getpid()
                else stat[stat.index("(") + 1:stat.rindex(")")])
        used[name] = used.get(name, 0) + int(fields[11]) + int(fields[12])
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    used["machine"] = sum(cpu) - cpu[3] - cpu[4]
    return {name: ticks * 1000 / tick for name, ticks in used.items()}


def cpu_since(before, after):
    return {name: after[name] - before.get(name, 0) for name in after}


class Endpoints:
    """Creates endpoints (URL RECEIVER_URL/hook/<label>) and writes each
    secret to SECRETS.json for the receiver before any job of its company
    can end."""

    def __init__(self, receiver_url, secrets_path):
        self.receiver_url, self.secrets_path, self.secrets = receiver_url, secrets_path, {}

    def create(self, api, label):
        answer = api.call(Action="CreateOrderSummaryWebhook", URL=f"{self.receiver_url}hook/{label}",
                          Description=f"bench/webhooks.sh {label}")
        self.secrets[label] = answer["Secret"]
        save(self.secrets_path + ".tmp", self.secrets)
        os.replace(self.secrets_path + ".tmp", self.secrets_path)
        return answer["WebhookId"]


def sequential(the_plan, api, endpoints, receipts, pg, receiver_pid):
    """Company 1's jobs one after another, each block without and with an
    endpoint; the with-endpoint jobs' webhooks awaited after each block and
    their events read before the endpoint is deleted (its deliveries and
    attempts go with it). CPU is sampled around each block's jobs (and,
    with an endpoint, until their webhooks arrived)."""
    _, warm, _ = ordersum_sequential(api, the_plan["warmup"])
    check_ordersum_jobs(api, "warm-up", warm)
    latencies, hooked, events = {"without": [], "with": []}, [], []
    cpu = {"without": {}, "with": {}}
    for block in range(BLOCKS):
        jobs = the_plan["sequential"][block * BLOCK:(block + 1) * BLOCK]
        for condition in ("without", "with") if block % 2 == 0 else ("with", "without"):
            print(f"webhooks: sequential block {block + 1}/{BLOCKS}, {condition} an endpoint", file=sys.stderr)
            webhook = endpoints.create(api, f"seq{block}") if condition == "with" else None
            before = cpu_ms(receiver_pid)
            took, done, _ = ordersum_sequential(api, jobs)
            ids = [job_id for _, job_id in done]
            if webhook:
                receipts.wait_for_jobs(ids)
            for name, ms in cpu_since(before, cpu_ms(receiver_pid)).items():
                cpu[condition][name] = cpu[condition].get(name, 0) + ms
            check_ordersum_jobs(api, f"sequential ({condition} an endpoint)", done)
            latencies[condition] += took
            if webhook:
                time.sleep(0.5)  # the last attempt recorded
                hooked += ids
                events += events_of(pg, ids)
                api.call(Action="DeleteOrderSummaryWebhook", WebhookId=webhook)
    return latencies, cpu, hooked, events


def burst(the_plan, keys, url):
    """One thread a company, all released at once, each submits its EXPORTS
    jobs back to back (WaitSeconds=0), then CANCELS more, each cancelled as
    soon as it is submitted. Nobody polls: the webhooks are how the jobs'
    ends are learnt."""
    barrier = threading.Barrier(len(BURST_COMPANIES))
    jobs, errors = {}, []

    def company_thread(company, plan_jobs):
        api = Api(url, keys[company])
        try:
            barrier.wait()
            for job in plan_jobs[:EXPORTS]:
                answer = api.call(Action="DownloadOrderSummary", StartTime=job[1], EndTime=job[2], WaitSeconds=0)
                jobs[answer["JobId"]] = {"plan": job, "cancelled": False}
            for job in plan_jobs[EXPORTS:]:
                answer = api.call(Action="DownloadOrderSummary", StartTime=job[1], EndTime=job[2], WaitSeconds=0)
                api.call(Action="CancelOrderSummaryJob", JobId=answer["JobId"])
                jobs[answer["JobId"]] = {"plan": job, "cancelled": True}
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(f"company {company}: {err!r}")
            barrier.abort()
        finally:
            api.close()

    threads = [threading.Thread(target=company_thread, args=(int(c), j)) for c, j in the_plan["burst"].items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError("burst failed: " + "; ".join(errors))
    return jobs


def events_of(pg, job_ids):
    """The outbox's events of these jobs, and how their deliveries and
    attempts went (duration_ms: the worker's own time of the POST)."""
    rows = pg.execute(
        "SELECT v.id, v.job_id::text, v.status, extract(epoch FROM v.created_at)::float8,"
        " d.state, d.tries, (SELECT count(*) FROM webhook_attempts a WHERE a.event_id = v.id),"
        " (SELECT min(a.duration_ms) FROM webhook_attempts a WHERE a.event_id = v.id)"
        " FROM webhook_events v LEFT JOIN webhook_deliveries d ON d.event_id = v.id"
        " WHERE v.job_id = ANY(%s::uuid[])",
        (list(job_ids),),
    ).fetchall()
    return [
        {"id": r[0], "job": r[1], "status": r[2], "ended": r[3], "state": r[4], "tries": r[5],
         "attempts": r[6], "post_ms": r[7]}
        for r in rows
    ]


def deliveries(events, receipts, job_ids):
    """Each event against the receipts with its webhook-id: latency, count."""
    by_id = {}
    for r in receipts:
        by_id.setdefault(r["id"], []).append(r)
    per_job = {}
    for e in events:
        per_job[e["job"]] = per_job.get(e["job"], 0) + 1
    delivered, latencies, to_accept, in_receiver, post = [], [], [], [], []
    for e in events:
        got = [r for r in by_id.get(e["id"], []) if r["verified"]]
        if got:
            first = min(got, key=lambda r: r["time"])
            delivered.append(first["time"])
            latencies.append(first["time"] - e["ended"])
            to_accept.append(first["accepted"] - e["ended"])
            in_receiver.append(first["time"] - first["accepted"])
            if e["post_ms"] is not None:
                post.append(e["post_ms"] / 1000)
    ids = {e["id"] for e in events}
    return {
        "jobs": len(job_ids),
        "events": len(events),
        "jobs_without_event": len(set(job_ids) - set(per_job)),
        "jobs_with_several_events": sum(1 for n in per_job.values() if n > 1),
        "delivered": len(delivered),
        "duplicates": sum(len(rs) - 1 for i, rs in by_id.items() if i in ids and len(rs) > 1),
        "not_verified": sum(1 for r in receipts if r["id"] in ids and not r["verified"]),
        "not_delivered_state": sum(1 for e in events if e["state"] != "delivered"),
        "attempts": sum(e["attempts"] for e in events),
        "statuses": {s: sum(1 for e in events if e["status"] == s) for s in sorted({e["status"] for e in events})},
        "latencies": latencies,
        "to_accept": to_accept,
        "in_receiver": in_receiver,
        "post": post,
        "first_end": min(e["ended"] for e in events),
        "last_end": max(e["ended"] for e in events),
        "last_receipt": max(delivered) if delivered else None,
    }


def check_burst_rows(jobs, receipts):
    """A succeeded export's webhook carries the rows SQL counts in its window."""
    for r in receipts:
        job = jobs.get(r.get("job"))
        if job and r["status"] == "Succeeded":
            _, start, end, paid, unpaid = job["plan"]
            if (r["paid"], r["unpaid"]) != (paid, unpaid):
                raise BenchError(f"burst job {r['job']} [{start}, {end}): the webhook says {r['paid']} + {r['unpaid']}"
                                 f" rows, SQL counts {paid} + {unpaid}")


def run(plan_path, keys_path, url, receiver_url, receiver_pid, secrets_path, received_path, db_url, out):
    the_plan, keys = load(plan_path), read_keys(keys_path)
    receipts, endpoints = Receipts(received_path), Endpoints(receiver_url, secrets_path)
    api = Api(url, keys[SEQUENTIAL_COMPANY])
    with psycopg.connect(db_url, autocommit=True) as pg:
        latencies, cpu, hooked, hooked_events = sequential(the_plan, api, endpoints, receipts, pg, int(receiver_pid))
    api.close()

    print(f"webhooks: burst of {len(BURST_COMPANIES)} companies × {EXPORTS + CANCELS} job ends", file=sys.stderr)
    for company in BURST_COMPANIES:
        company_api = Api(url, keys[company])
        endpoints.create(company_api, f"c{company}")
        company_api.close()
    submitted = now()
    jobs = burst(the_plan, keys, url)
    submit_secs = now() - submitted
    receipts.wait_for_jobs(jobs)
    time.sleep(SETTLE)
    received = receipts.poll()
    check_burst_rows(jobs, received)
    with psycopg.connect(db_url, autocommit=True) as pg:
        burst_result = deliveries(events_of(pg, jobs), received, list(jobs))
    idle_result = deliveries(hooked_events, received, hooked)
    burst_result["submit_secs"] = submit_secs
    burst_result["cancel_calls"] = sum(1 for j in jobs.values() if j["cancelled"])
    save(out, {"sequential": latencies, "cpu": cpu, "burst": burst_result, "idle": idle_result})


# ---------------------------------------------------------------- the table


def table(out_path):
    o = load(out_path)
    b, idle, seq, cpu = o["burst"], o["idle"], o["sequential"], o["cpu"]

    def ms(seconds):
        return f"{seconds * 1000:.0f}" if seconds >= 0.01 else f"{seconds * 1000:.1f}"

    def spread(values):
        return " / ".join(ms(percentile(values, p)) for p in (50, 99, 100))

    def met(ok):
        return "yes" if ok else "**no**"

    expected = len(BURST_COMPANIES) * (EXPORTS + CANCELS)
    span = b["last_receipt"] - b["first_end"]
    statuses = ", ".join(f"{n} {s}" for s, n in b["statuses"].items())
    once = b["duplicates"] == 0 and b["jobs_with_several_events"] == 0 and b["jobs_without_event"] == 0
    clean = b["attempts"] == expected and b["not_verified"] == 0 and b["not_delivered_state"] == 0
    lines = [
        f"## Completion webhooks: {expected} job ends → a local receiver ({os.cpu_count()} cores)",
        "",
        "| measure | value | target | met |",
        "|---|---|---|---|",
        f"| job ends (events in webhook_events) | {b['events']} ({statuses}) | {expected} |"
        f" {met(b['events'] == expected)} |",
        f"| events delivered (verified) / expected | {b['delivered']} / {expected} | all |"
        f" {met(b['delivered'] == expected)} |",
        f"| duplicate receipts; jobs with no or several events | {b['duplicates']};"
        f" {b['jobs_without_event'] + b['jobs_with_several_events']} | 0; 0 | {met(once)} |",
        f"| attempts; signatures refused; deliveries left not 'delivered' | {b['attempts']}; {b['not_verified']};"
        f" {b['not_delivered_state']} | {expected}; 0; 0 | {met(clean)} |",
        f"| job end → receipt, p50 / p99 / max (ms) | {spread(b['latencies'])} | p50 ≤ 50 ms |"
        f" {met(percentile(b['latencies'], 50) <= 0.050)} |",
        f"| … job end → connection accepted by the receiver | {spread(b['to_accept'])} | | |",
        f"| … accepted → body read, in the receiver | {spread(b['in_receiver'])} | | |",
        f"| … the POST as the worker timed it (duration_ms) | {spread(b['post'])} | | |",
        f"| deliveries/s (first job end → last receipt, {span:.2f} s) | {b['delivered'] / span:.1f} | | |",
        f"| job ends/s (first → last job end, {b['last_end'] - b['first_end']:.2f} s) |"
        f" {b['events'] / (b['last_end'] - b['first_end']):.1f} | | |",
        f"| sequential jobs' webhooks ({idle['delivered']} of {idle['jobs']}, one job at a time):"
        f" job end → receipt, p50 / p99 / max (ms) | {spread(idle['latencies'])} | |"
        f" {met(idle['delivered'] == idle['jobs'] and idle['duplicates'] == 0)} |",
        "",
        f"| small jobs one after another ({len(seq['without'])} + {len(seq['with'])}) | without an endpoint |"
        " with an endpoint | change |",
        "|---|---|---|---|",
    ]

    def change(without, with_, unit="ms"):
        percent = f" ({(with_ / without - 1) * 100:+.0f} %)" if without >= 0.5 else ""
        return f"{with_ - without:+.1f} {unit}{percent}"

    for name, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        without, with_ = percentile(seq["without"], p), percentile(seq["with"], p)
        lines.append(f"| submit → URL {name} (ms) | {ms(without)} | {ms(with_)} | {change(without * 1000, with_ * 1000)} |")
    means = [statistics.mean(seq[c]) * 1000 for c in ("without", "with")]
    lines.append(f"| submit → URL mean (ms) | {means[0]:.1f} | {means[1]:.1f} | {change(*means)} |")
    groups = [("ordersum-worker", "2 × ordersum-worker"), ("postgres", "Postgres"), ("ordersum-api", "ordersum-api"),
              ("receiver", "the receiver (Python)"), ("s3s-fs", "S3 server (s3s-fs)"), ("driver", "the client (Python)"),
              ("machine", "whole machine (/proc/stat)")]
    for key, label in groups:
        per_job = [cpu[c].get(key, 0) / len(seq[c]) for c in ("without", "with")]
        lines.append(f"| CPU per job (ms): {label} | {per_job[0]:.2f} | {per_job[1]:.2f} | {change(*per_job)} |")
    lines += [
        "",
        f"Burst: {len(BURST_COMPANIES)} companies, one endpoint each, one client thread a company, all released at"
        f" once; each submits {EXPORTS} jobs of one-hour windows back to back (WaitSeconds=0), then {CANCELS} more,"
        f" each cancelled (CancelOrderSummaryJob) as soon as submitted ({b['submit_secs']:.2f} s for the"
        f" {b['jobs'] + b['cancel_calls']} calls); no client polls. Latency: the receiver's time.time() once the"
        " body is read − webhook_events.created_at (clock_timestamp() in the trigger, inside the transaction"
        " that ends the job: its commit is part of it), per event, its first verified receipt (by webhook-id);"
        " \"accepted\": when the receiver's accept() returned (after any wait in its backlog). Each succeeded"
        " job's webhook rows checked against SQL counts.",
        f"Sequential: {BLOCKS} blocks of {BLOCK} jobs of company {SEQUENTIAL_COMPANY} (one-day windows, 1-2k rows,"
        f" after {WARMUP} unreported), each block run without and with an endpoint (created before, deleted"
        " after the block's webhooks arrived) on the same windows, the order alternating; timed as bench/small.py"
        " times them (DownloadOrderSummary WaitSeconds=60 sent → Data.DownloadURL in hand). CPU: utime + stime"
        " from /proc over each block's jobs (with an endpoint, until their webhooks arrived), per job.",
        "API + 2 × ordersum-worker (ORDERSUM_WORKER_CONCURRENCY=1, ORDERSUM_WEBHOOK_CONCURRENCY="
        f"{os.environ.get('ORDERSUM_WEBHOOK_CONCURRENCY', '16')}, ORDERSUM_WEBHOOK_POLL_MS="
        f"{os.environ.get('ORDERSUM_WEBHOOK_POLL_MS', '1000')}), S3 store; receiver: Python ThreadingHTTPServer"
        " on 127.0.0.1 in a process of its own, standardwebhooks verify, 204.",
        f"Load average at the end (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}.",
    ]
    print("\n".join(lines))


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    {"plan": plan, "receive": receive, "run": run, "table": table}[mode](*args)


if __name__ == "__main__":
    try:
        main()
    except BenchError as err:
        sys.exit(f"webhooks.py: {err}")
