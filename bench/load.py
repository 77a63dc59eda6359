"""Request files for the API load run (bench/load.sh): signed calls as
UCloud's SDKs send them, one a line, for bench/load.lua.

    python load.py keys     DATABASE_URL COMPANIES
    python load.py enqueue  DATABASE_URL COUNT OUT.txt
    python load.py poll     DATABASE_URL COUNT OUT.txt
"""
import hashlib
import secrets
import sys
import time
from urllib.parse import urlencode

import psycopg

FIRST_COMPANY = 100_000


def sign(params, private_key):
    text = "".join(f"{k}{v}" for k, v in sorted(params.items()))
    return hashlib.sha1((text + private_key).encode()).hexdigest()


def signed(params, key):
    public, private = key
    params = dict(params, PublicKey=public)
    params["Signature"] = sign(params, private)
    return urlencode(params)


def keys(conn):
    return conn.execute(
        "SELECT public_key, private_key, company_id FROM api_keys WHERE company_id >= %s ORDER BY company_id",
        (FIRST_COMPANY,),
    ).fetchall()


def write(path, entries):
    """One call a line: `body <form body>` or `path <path and query>`."""
    with open(path, "w") as out:
        for kind, text in entries:
            out.write(f"{kind} {text}\n")


def main():
    mode, url = sys.argv[1], sys.argv[2]
    with psycopg.connect(url, autocommit=True) as conn:
        if mode == "keys":
            for company in range(FIRST_COMPANY, FIRST_COMPANY + int(sys.argv[3])):
                conn.execute(
                    "INSERT INTO api_keys (public_key, private_key, company_id) VALUES (%s, %s, %s)",
                    (f"load-{company}-{secrets.token_hex(6)}", secrets.token_hex(20), company),
                )
            return
        count, out = int(sys.argv[3]), sys.argv[4]
        pairs = keys(conn)
        if mode == "enqueue":
            # Windows start `first` seconds in: files made with different
            # `first` never repeat a request (a repeat is answered by dedup).
            first = int(sys.argv[5]) if len(sys.argv) > 5 else 0
            now = int(time.time())
            entries = []
            for i in range(first, first + count):
                public, private, _ = pairs[i % len(pairs)]
                params = {
                    "Action": "DownloadOrderSummary",
                    "StartTime": now - 30 * 86400 + i,
                    "EndTime": now,
                    "Region": "cn-bj2",
                    "Regions.0": "cn-bj2",
                }
                entries.append(("body", signed(params, (public, private))))
            write(out, entries)
        elif mode == "poll":
            by_company = {company: (public, private) for public, private, company in pairs}
            jobs = conn.execute(
                "SELECT id, company_id FROM summary_jobs WHERE company_id >= %s LIMIT %s", (FIRST_COMPANY, count)
            ).fetchall()
            entries = []
            for job_id, company in jobs:
                params = {"Action": "GetOrderSummaryJob", "JobId": str(job_id)}
                entries.append(("path", "/?" + signed(params, by_company[company])))
            write(out, entries)


if __name__ == "__main__":
    main()
