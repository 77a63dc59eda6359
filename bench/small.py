"""The driver of bench/small.sh: small jobs (1-2k orders each), ordersum
through its public API against the Celery peer (bench/celery_peer.py).

    python small.py plan      DATABASE_URL PLAN.json
    python small.py ordersum  PLAN.json KEYS API_URL OUT.json
    python small.py celery    PLAN.json OUT.json
    python small.py longpoll  PLAN.json KEYS API_URL API_PID DATABASE_URL OUT.json
    python small.py table     PLAN.json ORDERSUM.json CELERY.json LONGPOLL.json

KEYS: one `company public_key private_key` a line. Every call is signed as
UCloud's SDKs sign them (bench/load.py). Any failed job or unexpected answer
stops the run with an error.
"""
import asyncio
import hashlib
import http.client
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from urllib.parse import urlencode, urlsplit

import psycopg

SEQUENTIAL_COMPANY = 1
BURST_COMPANIES = list(range(2, 22))
LONGPOLL_COMPANY = 22  # no orders; its jobs only ever wait (workers stopped)
# The unrelated calls during the long-polls: ListOrderSummaryJobs of a company
# with a few finished jobs (each listed one costs a presigned URL).
UNRELATED_COMPANY = BURST_COMPANIES[0]
WARMUP, SEQUENTIAL, BURST_JOBS = 5, 200, 5
LONGPOLLS = 1000
WAIT = 60  # WaitSeconds of every waiting call
API_POOL_MAX = 10  # ORDERSUM_DB_MAX_CONNECTIONS' default: the API's pool
GIVE_UP = 600  # seconds a client waits for a job or a burst before failing
WINDOW = 86_400  # one day
ROWS = range(1000, 2001)  # rows a small job must have
ENDED_BADLY = {"Failed", "Cancelled", "Expired"}


class BenchError(Exception):
    pass


def now():
    return time.perf_counter()


def save(path, value):
    with open(path, "w") as out:
        json.dump(value, out, indent=1)


def load(path):
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------- the plan


def plan(db_url, out):
    """Distinct one-day windows on the seeded hour grid, and the rows each
    must give (counted in SQL, compared with what each job wrote)."""
    with psycopg.connect(db_url, autocommit=True) as conn:
        spans = {
            company: (first, last)
            for company, first, last in conn.execute(
                "SELECT company_id, extract(epoch FROM min(start_time))::bigint,"
                " extract(epoch FROM max(start_time))::bigint FROM orders GROUP BY company_id"
            )
        }

        def windows(company, steps):
            first, last = spans[company]
            result = []
            for step in steps:
                start = first + step * 3600
                if start + WINDOW > last + 3600:
                    raise BenchError(f"company {company}: too few seeded days for window {step}")
                result.append((start, start + WINDOW))
            return result

        def expect(company, window):
            paid, unpaid = conn.execute(
                "SELECT count(*) FILTER (WHERE status = 2), count(*) FILTER (WHERE status = 1) FROM orders"
                " WHERE company_id = %s AND start_time >= to_timestamp(%s) AND start_time < to_timestamp(%s)",
                (company, *window),
            ).fetchone()
            if paid == 0 or unpaid == 0 or paid + unpaid not in ROWS:
                raise BenchError(f"company {company} window {window}: {paid} + {unpaid} rows, not a small job")
            return [company, *window, paid, unpaid]

        for company in [SEQUENTIAL_COMPANY, *BURST_COMPANIES]:
            if company not in spans:
                raise BenchError(f"company {company} has no orders: seed it first")
        sequential = windows(SEQUENTIAL_COMPANY, range(WARMUP + SEQUENTIAL))
        burst_steps = [i * 60 for i in range(BURST_JOBS)]
        result = {
            "warmup": [expect(SEQUENTIAL_COMPANY, w) for w in sequential[:WARMUP]],
            "sequential": [expect(SEQUENTIAL_COMPANY, w) for w in sequential[WARMUP:]],
            "burst": {str(c): [expect(c, w) for w in windows(c, burst_steps)] for c in BURST_COMPANIES},
            "longpoll_start": spans[SEQUENTIAL_COMPANY][0],
        }
    save(out, result)
    rows = [p + u for job in result["sequential"] for p, u in [job[3:5]]]
    print(f"plan: {len(rows)} sequential jobs of {min(rows)}-{max(rows)} rows", file=sys.stderr)


def check_rows(what, job, paid, unpaid):
    company, start, end, want_paid, want_unpaid = job
    if (paid, unpaid) != (want_paid, want_unpaid):
        raise BenchError(
            f"{what}: company {company} [{start}, {end}) wrote {paid} paid + {unpaid} unpaid rows,"
            f" SQL counts {want_paid} + {want_unpaid}"
        )


# ---------------------------------------------------------------- ordersum


def read_keys(path):
    keys = {}
    with open(path) as f:
        for line in f:
            company, public, private = line.split()
            keys[int(company)] = (public, private)
    return keys


def sign(params, private_key):
    text = "".join(f"{k}{v}" for k, v in sorted(params.items()))
    return hashlib.sha1((text + private_key).encode()).hexdigest()


def signed(params, key):
    public, private = key
    params = {k: str(v) for k, v in params.items()}
    params["PublicKey"] = public
    params["Signature"] = sign(params, private)
    return urlencode(params)


class Api:
    """One keep-alive connection to the API, calls signed with one key."""

    def __init__(self, url, key):
        parts = urlsplit(url)
        self.host, self.port, self.key, self.conn = parts.hostname, parts.port, key, None

    def call(self, **params):
        body = signed(params, self.key).encode()
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=WAIT + 30)
            try:
                self.conn.request("POST", "/", body, {"Content-Type": "application/x-www-form-urlencoded"})
                response = self.conn.getresponse()
                data = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # An idle keep-alive connection the API closed: once more on
                # a new one (an equal DownloadOrderSummary gets its live job).
                self.close()
                if attempt:
                    raise
        if response.status != 200:
            raise BenchError(f"{params['Action']}: HTTP {response.status}: {data[:200]!r}")
        answer = json.loads(data)
        if answer.get("RetCode") != 0:
            raise BenchError(f"{params['Action']}: {answer}")
        return answer

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def url_of(answer):
    return answer.get("Data", {}).get("DownloadURL")


def wait_for_url(api, answer):
    """Long-polls GetOrderSummaryJob until the job's answer has a URL."""
    give_up = now() + GIVE_UP
    while not url_of(answer):
        if now() > give_up:
            raise BenchError(f"job {answer['JobId']} still {answer['Status']} after {GIVE_UP} s")
        if answer["Status"] in ENDED_BADLY or answer["Status"] == "Succeeded":
            job = api.call(Action="GetOrderSummaryJob", JobId=answer["JobId"])
            raise BenchError(f"job {answer['JobId']} {job['Status']} without a URL: {job.get('ErrorMessage')}")
        answer = api.call(Action="GetOrderSummaryJob", JobId=answer["JobId"], WaitSeconds=WAIT)
    return answer


def check_ordersum_jobs(api, what, jobs):
    """Each job's rows (Progress) against the SQL counts of its window."""
    for job, job_id in jobs:
        answer = api.call(Action="GetOrderSummaryJob", JobId=job_id)
        if answer["Status"] != "Succeeded":
            raise BenchError(f"{what}: job {job_id} is {answer['Status']}")
        check_rows(what, job, answer["Progress"]["PaidRows"], answer["Progress"]["UnpaidRows"])


def ordersum_sequential(api, jobs):
    latencies, done = [], []
    for job in jobs:
        _, start, end = job[:3]
        started = now()
        answer = api.call(Action="DownloadOrderSummary", StartTime=start, EndTime=end, WaitSeconds=WAIT)
        answer = wait_for_url(api, answer)
        latencies.append(now() - started)
        done.append((job, answer["JobId"]))
    return latencies, done, url_of(answer)


def run_burst(companies, submit_and_wait):
    """One thread a company, all released at once; each submits its jobs
    back to back and waits for them. Returns the makespan and each
    company's time from its first submit to its first finished job."""
    barrier = threading.Barrier(len(companies))
    results, errors = {}, []

    def company_thread(company, jobs):
        try:
            results[company] = submit_and_wait(company, jobs, barrier)
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(f"company {company}: {err!r}")
            barrier.abort()

    threads = [threading.Thread(target=company_thread, args=item) for item in companies.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise BenchError("burst failed: " + "; ".join(errors))
    first_submit = min(r["submitted"] for r in results.values())
    last_done = max(max(r["done"]) for r in results.values())
    count = sum(len(r["done"]) for r in results.values())
    return {
        "jobs": count,
        "makespan": last_done - first_submit,
        "jobs_per_s": count / (last_done - first_submit),
        "first_job": [min(r["done"]) - r["submitted"] for r in results.values()],
    }


def ordersum_burst(url, keys, plan_burst):
    def submit_and_wait(company, jobs, barrier):
        submitter = Api(url, keys[company])
        waiters = [Api(url, keys[company]) for _ in jobs]
        barrier.wait()
        submitted = now()
        answers = [
            submitter.call(Action="DownloadOrderSummary", StartTime=start, EndTime=end, WaitSeconds=0)
            for _, start, end, _, _ in jobs
        ]
        done = [None] * len(jobs)
        failures = []

        def wait(i):
            try:
                wait_for_url(waiters[i], answers[i])
                done[i] = now()
            except BaseException as err:  # noqa: BLE001 - reported below
                failures.append(err)

        threads = [threading.Thread(target=wait, args=(i,)) for i in range(len(jobs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]
        check_ordersum_jobs(submitter, "burst", zip(jobs, [a["JobId"] for a in answers]))
        for api in [submitter, *waiters]:
            api.close()
        return {"submitted": submitted, "done": done}

    return run_burst({int(c): jobs for c, jobs in plan_burst.items()}, submit_and_wait)


def ordersum(plan_path, keys_path, url, out):
    the_plan, keys = load(plan_path), read_keys(keys_path)
    api = Api(url, keys[SEQUENTIAL_COMPANY])
    _, warm, _ = ordersum_sequential(api, the_plan["warmup"])
    check_ordersum_jobs(api, "warm-up", warm)
    print("ordersum: warm-up done; sequential jobs", file=sys.stderr)
    latencies, done, last_url = ordersum_sequential(api, the_plan["sequential"])
    check_ordersum_jobs(api, "sequential", done)
    with urllib.request.urlopen(last_url, timeout=30) as response:
        if response.read(4) != b"PK\x03\x04":
            raise BenchError("the last sequential job's file is not a zip (xlsx)")
    api.close()
    print("ordersum: burst", file=sys.stderr)
    burst = ordersum_burst(url, keys, the_plan["burst"])
    save(out, {"sequential": latencies, "burst": burst})


# ---------------------------------------------------------------- Celery


def celery(plan_path, out):
    from celery.result import ResultSet

    from celery_peer import app, order_summary

    the_plan = load(plan_path)
    written = []

    def check(what, job, value):
        if not os.path.exists(value["path"]):
            raise BenchError(f"{what}: {value['path']} is missing")
        check_rows(what, job, value["paid"], value["unpaid"])
        written.append(value["path"])

    def sequential(jobs):
        latencies = []
        for job in jobs:
            started = now()
            value = order_summary.apply_async(job[:3]).get(timeout=GIVE_UP)
            latencies.append(now() - started)
            check("sequential", job, value)
        return latencies

    sequential(the_plan["warmup"])
    print("celery: warm-up done; sequential jobs", file=sys.stderr)
    latencies = sequential(the_plan["sequential"])

    def submit_and_wait(company, jobs, barrier):
        app.backend.client.ping()  # this thread's result backend, connected
        barrier.wait()
        submitted = now()
        results = [order_summary.apply_async(job[:3]) for job in jobs]
        by_id = {r.id: job for r, job in zip(results, jobs)}
        done = []

        def finished(task_id, value):
            done.append(now())
            check("burst", by_id[task_id], value)

        ResultSet(results).join_native(timeout=GIVE_UP, callback=finished)
        if len(done) != len(jobs):
            raise BenchError(f"{len(done)} of {len(jobs)} tasks answered")
        return {"submitted": submitted, "done": done}

    print("celery: burst", file=sys.stderr)
    burst = run_burst({int(c): jobs for c, jobs in the_plan["burst"].items()}, submit_and_wait)
    with open(written[-1], "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise BenchError("the Celery peer's file is not a zip (xlsx)")
    for path in written:
        os.remove(path)
    save(out, {"sequential": latencies, "burst": burst})


# ---------------------------------------------------------------- long-polls


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^VmRSS:\s+(\d+)", f.read(), re.M).group(1))


def api_pg_connections(conn):
    """The API's Postgres connections, and how many of them are in a query
    (the API names its pool's connections: connect_and_migrate)."""
    return conn.execute(
        "SELECT count(*), count(*) FILTER (WHERE state <> 'idle') FROM pg_stat_activity"
        " WHERE application_name = 'ordersum-api' AND pid <> pg_backend_pid()"
    ).fetchone()


def wrk_unrelated(url, key, seconds):
    """wrk -c4 on ListOrderSummaryJobs of another company: p50, p99 (ms)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as calls:
        calls.write("path /?" + signed({"Action": "ListOrderSummaryJobs"}, key) + "\n")
    try:
        out = subprocess.run(
            ["wrk", "-t2", "-c4", f"-d{seconds}s", "--latency", "-s", os.path.join(os.path.dirname(__file__), "load.lua"), url],
            env=dict(os.environ, WRK_REQUESTS=calls.name), capture_output=True, text=True, check=True,
        ).stdout
    finally:
        os.remove(calls.name)
    found = re.search(r"RESULT requests=(\d+) .* p50_ms=([\d.]+) p99_ms=([\d.]+) retcode_not_0=(\d+)", out)
    if not found:
        raise BenchError(f"wrk printed no result: {out}")
    requests, p50, p99, bad = found.groups()
    if int(bad):
        raise BenchError(f"wrk: {bad} of {requests} ListOrderSummaryJobs calls answered RetCode != 0")
    return {"requests": int(requests), "p50_ms": float(p50), "p99_ms": float(p99)}


async def hold_longpolls(host, port, paths):
    """Opens one connection per path and sends its GET; returns the streams
    and the tasks reading the answers (none should arrive while held)."""
    held = []
    for path in paths:
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
        held.append((reader, writer))
    await asyncio.gather(*(writer.drain() for _, writer in held))
    answered = [asyncio.create_task(reader.read(1)) for reader, _ in held]
    return held, answered


async def answer_at_once(host, port, paths):
    """Opens one connection per path as hold_longpolls does, sends its GET
    and reads each whole answer: the same calls, answered without waiting."""
    streams, first_bytes = await hold_longpolls(host, port, paths)
    for (reader, writer), first_byte in zip(streams, first_bytes):
        head = await first_byte + await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
        body = json.loads(await reader.readexactly(length))
        writer.close()
        if body.get("RetCode") != 0 or body.get("Status") != "Queued":
            raise BenchError(f"a GetOrderSummaryJob WaitSeconds=0 answered {body}")


async def longpoll_async(the_plan, keys, url, api_pid, db_url):
    parts = urlsplit(url)
    api = Api(url, keys[LONGPOLL_COMPANY])
    base = the_plan["longpoll_start"]
    jobs = [
        api.call(Action="DownloadOrderSummary", StartTime=base + i, EndTime=base + i + WINDOW, WaitSeconds=0)
        for i in range(LONGPOLLS)
    ]
    api.close()
    if any(job["Status"] != "Queued" for job in jobs):
        raise BenchError("long-poll jobs must stay queued: are the workers stopped?")

    def paths(wait):
        return [
            "/?" + signed({"Action": "GetOrderSummaryJob", "JobId": job["JobId"], "WaitSeconds": wait}, keys[LONGPOLL_COMPANY])
            for job in jobs
        ]

    other = keys[UNRELATED_COMPANY]
    with psycopg.connect(db_url, autocommit=True) as pg:
        await asyncio.sleep(1)
        before = await quiet(pg, api_pid)
        # The same calls without waiting first: the pool as warm as 1 000
        # calls arriving together make it, to compare the held calls with.
        await answer_at_once(parts.hostname, parts.port, paths(0))
        await asyncio.sleep(1)
        warm = await quiet(pg, api_pid)
        opened = now()
        held, answered = await hold_longpolls(parts.hostname, parts.port, paths(WAIT))
        await asyncio.sleep(1)
        holding = await quiet(pg, api_pid)
        holding["unrelated"], busy = await with_samples(pg, api_pid, wrk_unrelated, url, other, 10)
        holding["pg_with_calls"] = max(busy["pg"])
        holding["rss_kib"] = max(holding["rss_kib"], *busy["rss_kib"])
        early = sum(task.done() for task in answered)
        held_for = now() - opened
        for task in answered:
            task.cancel()
        for _, writer in held:
            writer.close()
        if early:
            raise BenchError(f"{early} of {LONGPOLLS} long-polls were answered before their {WAIT} s")
        if held_for >= WAIT:
            raise BenchError(f"the measurement took {held_for:.0f} s, longer than the long-polls last")
        # Closed by the client: the same measures again, and the unrelated
        # calls' idle figures (the pool as warm as while held).
        await asyncio.sleep(1)
        after = await quiet(pg, api_pid)
        after["unrelated"], busy = await with_samples(pg, api_pid, wrk_unrelated, url, other, 10)
        after["pg_with_calls"] = max(busy["pg"])
    return {"before": before, "warm": warm, "held": holding, "after": after, "count": LONGPOLLS}


def transactions(pg):
    return pg.execute(
        "SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()"
    ).fetchone()[0]


async def quiet(pg, api_pid, seconds=3):
    """The API alone for a few seconds: its highest RSS, its Postgres
    connections (fewest and most sampled) and the database's transactions
    per second (Postgres flushes these statistics about once a second, so
    take it as an estimate)."""
    started, before = now(), transactions(pg)
    rss, conns, busy = [], [], []
    while now() - started < seconds:
        rss.append(vm_rss_kib(api_pid))
        open_, in_query = api_pg_connections(pg)
        conns.append(open_)
        busy.append(in_query)
        await asyncio.sleep(0.25)
    return {"rss_kib": max(rss), "pg": max(conns), "pg_min": min(conns), "pg_busy": max(busy),
            "tx_per_s": (transactions(pg) - before) / (now() - started)}


async def with_samples(pg, api_pid, blocking, *args):
    """Runs blocking(*args) in a thread while sampling the API's RSS and
    Postgres connections every 0.25 s."""
    samples = {"rss_kib": [], "pg": []}
    task = asyncio.create_task(asyncio.to_thread(blocking, *args))
    while not task.done():
        samples["rss_kib"].append(vm_rss_kib(api_pid))
        samples["pg"].append(api_pg_connections(pg)[0])
        await asyncio.wait([task], timeout=0.25)
    return task.result(), samples


def longpoll(plan_path, keys_path, url, api_pid, db_url, out):
    result = asyncio.run(longpoll_async(load(plan_path), read_keys(keys_path), url, int(api_pid), db_url))
    save(out, result)


# ---------------------------------------------------------------- the table


def percentile(values, p):
    """Nearest rank: the smallest value with at least p % of values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def table(plan_path, ordersum_path, celery_path, longpoll_path):
    the_plan, o, c, lp = load(plan_path), load(ordersum_path), load(celery_path), load(longpoll_path)
    rows = [j[3] + j[4] for j in the_plan["sequential"]]
    burst_rows = [j[3] + j[4] for jobs in the_plan["burst"].values() for j in jobs]

    def ms(seconds):
        return f"{seconds * 1000:.0f}"

    def advantage(ours, theirs, higher_is_better=False):
        ratio = ours / theirs if higher_is_better else theirs / ours
        return f"{ratio:.2f}×"

    def met(ok):
        return "yes" if ok else "**no**"

    lines = [
        f"## Small jobs: ordersum vs Celery ({os.cpu_count()} cores)",
        "",
        "| measure | ordersum | Celery | ordersum advantage (>1 = better) | target | met |",
        "|---|---|---|---|---|---|",
    ]
    so, sc = o["sequential"], c["sequential"]
    for name, p in (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100)):
        ours, theirs = percentile(so, p), percentile(sc, p)
        target, ok = {
            "p50": ("≤ 100 ms; ≥ 3× lower than Celery", ours <= 0.100 and theirs / ours >= 3),
            "p99": ("≤ 250 ms", ours <= 0.250),
        }.get(name, ("", None))
        lines.append(
            f"| sequential latency {name} (ms) | {ms(ours)} | {ms(theirs)} | {advantage(ours, theirs)} | {target} |"
            f" {'' if ok is None else met(ok)} |"
        )
    bo, bc = o["burst"], c["burst"]
    lines.append(
        f"| burst makespan (s) | {bo['makespan']:.2f} | {bc['makespan']:.2f} |"
        f" {advantage(bo['makespan'], bc['makespan'])} | | |"
    )
    lines.append(
        f"| burst jobs/s | {bo['jobs_per_s']:.1f} | {bc['jobs_per_s']:.1f} |"
        f" {advantage(bo['jobs_per_s'], bc['jobs_per_s'], higher_is_better=True)} | ≥ 40 |"
        f" {met(bo['jobs_per_s'] >= 40)} |"
    )

    def spread(first):
        median = statistics.median(first)
        return min(first), median, max(first), max(first) / median

    fo, fc = spread(bo["first_job"]), spread(bc["first_job"])
    lines.append(
        f"| burst: a company's first job, min / median / max (ms) | {ms(fo[0])} / {ms(fo[1])} / {ms(fo[2])} |"
        f" {ms(fc[0])} / {ms(fc[1])} / {ms(fc[2])} | {advantage(fo[1], fc[1])} (median) | | |"
    )
    lines.append(
        f"| burst: first job max / median | {fo[3]:.2f} | {fc[3]:.2f} | {advantage(fo[3], fc[3])} | ≤ 2 |"
        f" {met(fo[3] <= 2)} |"
    )
    before, warm, held, after = lp["before"], lp["warm"], lp["held"], lp["after"]
    rss_growth = (held["rss_kib"] - before["rss_kib"]) / 1024

    def pg(stats):
        return str(stats["pg"]) if stats["pg"] == stats["pg_min"] else f"{stats['pg_min']}–{stats['pg']}"

    def latency(stats):
        return f"{stats['unrelated']['p50_ms']:.2f} / {stats['unrelated']['p99_ms']:.2f}"

    def row(name, measure, target="", ok=None):
        cells = " | ".join(measure(stats) for stats in (before, warm, held, after))
        return f"| {name} | {cells} | {target} | {'' if ok is None else met(ok)} |"

    lines += [
        "",
        f"| {lp['count']} concurrent GetOrderSummaryJob on queued jobs | before (fresh API) |"
        f" the same calls with WaitSeconds=0, answered | held (WaitSeconds={WAIT}) | after the client closed them | target | met |",
        "|---|---|---|---|---|---|---|",
        row("API RSS (MiB)", lambda st: f"{st['rss_kib'] / 1024:.1f}" + (f" (+{rss_growth:.1f})" if st is held else ""),
            "held ≤ before + 100 MiB", rss_growth <= 100),
        row("Postgres connections of the API open, no other calls", pg,
            f"held = with WaitSeconds=0 (≤ pool {API_POOL_MAX} + 1 listener)",
            held["pg"] <= warm["pg"] and held["pg"] <= API_POOL_MAX + 1),
        row("… of them in a query (not idle), no other calls", lambda st: str(st["pg_busy"]), "0 while held",
            held["pg_busy"] == 0),
        row("Postgres transactions/s (≈), no other calls", lambda st: f"{st['tx_per_s']:.0f}"),
        f"| unrelated calls (ListOrderSummaryJobs of company {UNRELATED_COMPANY}, wrk -c4, 10 s): p50 / p99 (ms) | – | – |"
        f" {latency(held)} | {latency(after)} | p99 < 25 ms | {met(held['unrelated']['p99_ms'] < 25)} |",
        f"| … Postgres connections of the API meanwhile (most sampled) | – | – | {held['pg_with_calls']} |"
        f" {after['pg_with_calls']} | | |",
        "",
        f"Sequential: {len(so)} jobs one after another (after {len(the_plan['warmup'])} unreported),"
        f" company {SEQUENTIAL_COMPANY}, distinct one-day windows of {min(rows)}–{max(rows)} rows; ordersum:"
        f" DownloadOrderSummary WaitSeconds={WAIT} sent → an answer with Data.DownloadURL in hand"
        " (GetOrderSummaryJob long-polls while it has none); Celery: apply_async → AsyncResult.get().",
        f"Burst: {len(the_plan['burst'])} companies × {BURST_JOBS} jobs ({min(burst_rows)}–{max(burst_rows)} rows),"
        " one client thread a company, all released at once, jobs submitted back to back (ordersum"
        " WaitSeconds=0), then waited for together; makespan: first submit → last result;"
        " first job: a company's first submit → its first result.",
        "Both: 2 worker processes (ordersum: 2 × ordersum-worker with"
        f" ORDERSUM_WORKER_CONCURRENCY={os.environ.get('BENCH_CONCURRENCY', '1')}, S3 store; Celery: one"
        " prefork worker -c 2, one task per process, Redis broker and results, local files)."
        " Every job's rows checked against SQL counts.",
        f"Long-polls: a fresh API, workers stopped; {lp['count']} jobs of company {LONGPOLL_COMPANY} queued,"
        f" one connection each holding GetOrderSummaryJob WaitSeconds={WAIT}, all open within the"
        f" {WAIT} s; before them, the same {lp['count']} calls with WaitSeconds=0, sent the same way and"
        " answered at once. \"No other calls\": 3 s with nothing else calling, sampled every 0.25 s (RSS: VmRSS,"
        " the highest sample, while held also over the unrelated calls; Postgres connections:"
        " pg_stat_activity rows of application_name 'ordersum-api', fewest–most; transactions/s from"
        " pg_stat_database, which Postgres updates about once a second); then the unrelated calls.",
        f"Load average at the end (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}.",
    ]
    print("\n".join(lines))


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    {"plan": plan, "ordersum": ordersum, "celery": celery, "longpoll": longpoll, "table": table}[mode](*args)


if __name__ == "__main__":
    try:
        main()
    except BenchError as err:
        sys.exit(f"small.py: {err}")
