// End-to-end test of the operator console in headless Chromium, driven by
// playwright-core. Run by scripts/e2e.sh, which starts the API and a worker
// on a database of their own and passes:
//   ORDERSUM_E2E_BASE_URL  http://127.0.0.1:PORT (the API)
//   ORDERSUM_ADMIN_TOKEN   the operator token
//   ORDERSUM_PUBLIC_KEY / ORDERSUM_PRIVATE_KEY  an API key of company 1
//   DATABASE_URL           the test's database (psql inserts a failed job)
//   ORDERSUM_E2E_DAYS      days the seeded orders span
//   ORDERSUM_E2E_OUTPUT    where screenshots go
// The tests run in order and share one browser page: sign in, follow and
// cancel a big job, retry a failed job and download the result, then look
// at workers, companies and a failing webhook, and sign out.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomUUID } from "node:crypto";
import { execFileSync } from "node:child_process";
import { readFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (run scripts/e2e.sh)`);
  return value;
};

const BASE = env("ORDERSUM_E2E_BASE_URL").replace(/\/$/, "");
const TOKEN = env("ORDERSUM_ADMIN_TOKEN");
const PUBLIC_KEY = env("ORDERSUM_PUBLIC_KEY");
const PRIVATE_KEY = env("ORDERSUM_PRIVATE_KEY");
const DATABASE_URL = env("DATABASE_URL");
const DAYS = Number(process.env.ORDERSUM_E2E_DAYS || "60");
const OUTPUT = process.env.ORDERSUM_E2E_OUTPUT || "e2e-output";
const CHROMIUM = process.env.ORDERSUM_E2E_CHROMIUM || "/usr/bin/chromium";

if (!/^http:\/\/127\.0\.0\.1:\d+$/.test(BASE)) throw new Error(`the test talks to 127.0.0.1 only, not ${BASE}`);

// ------------------------------------------------------------------ helpers

/** Polls `probe` until it returns a truthy value; fails after `timeout` ms with `what`. */
async function until(what, probe, { timeout = 20_000, interval = 150 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      last = await probe();
      if (last) return last;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

/** A signed UCloud-style call to the public API (as `ordersum summary` makes). */
async function publicCall(params) {
  const form = {
    ...params,
    PublicKey: PUBLIC_KEY,
    Timestamp: String(Math.floor(Date.now() / 1000)),
    Nonce: randomUUID().replace(/-/g, "").slice(0, 16),
  };
  const keys = Object.keys(form).sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : Buffer.from(a) > Buffer.from(b) ? 1 : 0));
  const signing = keys.map((k) => k + form[k]).join("") + PRIVATE_KEY;
  form.Signature = createHash("sha1").update(signing, "utf8").digest("hex");
  const response = await fetch(`${BASE}/`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
  const body = await response.json();
  assert.equal(body.RetCode, 0, `${params.Action} answered ${JSON.stringify(body)}`);
  return body;
}

async function submit(startSecs, endSecs) {
  const body = await publicCall({
    Action: "DownloadOrderSummary",
    StartTime: String(startSecs),
    EndTime: String(endSecs),
    WaitSeconds: "0",
  });
  assert.ok(body.JobId, `no JobId in ${JSON.stringify(body)}`);
  return body.JobId;
}

const getJob = (jobId, wait = 0) => publicCall({ Action: "GetOrderSummaryJob", JobId: jobId, WaitSeconds: String(wait) });

function psql(sql) {
  return execFileSync("psql", [DATABASE_URL, "-v", "ON_ERROR_STOP=1", "-qtAc", sql], { encoding: "utf8" }).trim();
}

const sqlText = (s) => `'${String(s).replace(/'/g, "''")}'`;

// ------------------------------------------------------------ browser setup

let browser;
let context;
let page;
const problems = []; // console errors and page errors (CSP violations among them)
let sessionEnded = false; // the test cleared the cookies: 401s from the API are expected

before(async () => {
  mkdirSync(OUTPUT, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  context = await browser.newContext({ viewport: { width: 1366, height: 820 }, acceptDownloads: true, timezoneId: "UTC", locale: "en-US" });
  // Only the API under test: anything else is refused (and would be a bug).
  await context.route(/.*/, (route) => {
    const url = new URL(route.request().url());
    if (url.origin === BASE) return route.continue();
    problems.push(`request outside the API: ${url.href}`);
    return route.abort();
  });
  page = await context.newPage();
  page.setDefaultTimeout(15_000);
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() !== "error") return;
    const where = msg.location().url || "";
    // The wrong-token sign-in answers 401 by design; Chromium logs that.
    if (/Failed to load resource/.test(msg.text()) && /\/admin\/login$/.test(where)) return;
    // So does the poll that finds the session gone, when the test ends it.
    if (sessionEnded && /Failed to load resource.* 401/.test(msg.text()) && /\/admin\/api\//.test(where)) return;
    problems.push(`console error: ${msg.text()} (${where})`);
  });
});

after(async () => {
  await browser?.close();
});

/** The page is the same document as when `mark` was called: no reload happened. */
async function mark() {
  const id = randomUUID();
  await page.evaluate((value) => {
    window.__e2eMark = value;
  }, id);
  return async () => assert.equal(await page.evaluate(() => window.__e2eMark), id, "the page was reloaded");
}

const headStatus = () => page.locator(".page-head [data-testid=job-status]");

async function screenshot(name) {
  const path = join(OUTPUT, name);
  await page.screenshot({ path, fullPage: true });
  console.log(`screenshot: ${path}`);
  return path;
}

/**
 * A test of the chain: skipped when an earlier one failed (they build on
 * each other), and on failure the page is saved as failed-<n>.png.
 */
let broken = null;
let count = 0;
function step(name, options, fn) {
  const n = ++count;
  test(name, options, async (t) => {
    if (broken) {
      t.skip(`needs "${broken}", which failed`);
      return;
    }
    try {
      await fn(t);
    } catch (err) {
      broken = name;
      await page?.screenshot({ path: join(OUTPUT, `failed-${n}.png`), fullPage: true }).catch(() => {});
      console.log(`page at the failure: ${join(OUTPUT, `failed-${n}.png`)} (${page?.url()})`);
      throw err;
    }
  });
}

// -------------------------------------------------------------------- tests

step("sign-in: the form, a wrong token, the right token and its cookie", { timeout: 30_000 }, async () => {
  const first = await page.goto(`${BASE}/admin`);
  assert.equal(first.status(), 200);
  const csp = first.headers()["content-security-policy"] || "";
  assert.match(csp, /script-src 'self'/, "the sign-in page has the strict CSP");
  const token = page.getByLabel("Operator token");
  await token.waitFor();
  assert.equal(await token.getAttribute("type"), "password");
  assert.equal(await token.getAttribute("name"), "token");

  await token.fill("not-the-token");
  const [wrong] = await Promise.all([page.waitForNavigation(), page.getByRole("button", { name: "Sign in" }).click()]);
  assert.equal(
    wrong.status(),
    401,
    `POST /admin/login with a wrong token answered ${wrong.status()} ("${await page.getByTestId("login-message").innerText()}"); ` +
      `the form sent Origin: ${(await wrong.request().allHeaders()).origin}`,
  );
  assert.match(await page.getByTestId("login-message").innerText(), /Wrong token/);
  assert.equal((await context.cookies()).filter((c) => c.name === "ordersum_admin").length, 0);

  await page.getByLabel("Operator token").fill(TOKEN);
  await Promise.all([page.waitForURL(`${BASE}/admin`), page.getByRole("button", { name: "Sign in" }).click()]);
  await page.getByRole("navigation", { name: "Sections" }).waitFor();
  for (const name of ["Overview", "Jobs", "Workers", "Companies"]) {
    assert.ok(await page.getByRole("link", { name, exact: true }).isVisible(), `nav link ${name}`);
  }
  const cookie = (await context.cookies(BASE + "/admin")).find((c) => c.name === "ordersum_admin");
  assert.ok(cookie, "the session cookie is set");
  assert.equal(cookie.httpOnly, true, "HttpOnly");
  assert.equal(cookie.sameSite, "Strict", "SameSite=Strict");
  assert.equal(cookie.path, "/admin");
  assert.match(await page.locator('meta[name="csrf-token"]').getAttribute("content"), /\S{16,}/, "a CSRF token in the page");
  // The overview fills itself from the API.
  await until("the overview's numbers", async () => (await page.getByTestId("stat-queue-depth").innerText()).match(/\d/));
  assert.equal(await page.getByTestId("overview-chart").locator("svg g.minute").count(), 60);
  assert.deepEqual(problems, []);
});

let bigJob;

step("a running job's progress bar moves on the Jobs page; Cancel makes it Cancelled live", { timeout: 90_000 }, async () => {
  const now = Math.floor(Date.now() / 1000);
  bigJob = await submit(now - (DAYS + 1) * 86_400, now + 86_400);

  const same = await mark();
  await page.getByRole("link", { name: "Jobs", exact: true }).click();
  await page.waitForURL(/#\/jobs$/);
  const row = page.locator(`[data-testid=job-row][data-job-id="${bigJob}"]`);
  await row.waitFor();
  const fill = row.locator("[data-testid=progress-bar] [data-testid=progress-fill]");
  const width = async () => parseFloat(await fill.evaluate((node) => node.style.width)) || 0;

  // Two observations of the same row, the second wider than the first.
  const w1 = await until("the big job to run and show progress", async () => {
    const status = await row.getAttribute("data-status");
    assert.notEqual(status, "succeeded", "the big job finished before it could be watched: seed more orders");
    const w = await width();
    return status === "running" && w > 0 ? w : 0;
  }, { timeout: 40_000 });
  assert.ok(w1 < 100, `progress ${w1}% already full`);
  const w2 = await until("the progress bar to grow", async () => {
    const w = await width();
    return w > w1 ? w : 0;
  }, { timeout: 20_000 });
  assert.ok(w2 > w1 && w2 < 100, `the bar grew from ${w1}% to ${w2}%`);
  console.log(`progress bar: ${w1}% then ${w2}%`);
  assert.match(await row.locator("[data-testid=progress]").innerText(), /paid [\d,]+ · unpaid [\d,]+ rows/);
  assert.equal(await row.locator("[data-testid=job-status]").innerText(), "Running");
  await same();

  // Its page, then Cancel (confirmed), and the status turns Cancelled by itself.
  await row.getByRole("link", { name: bigJob.slice(-8) }).click();
  await page.waitForURL(new RegExp(`#/jobs/${bigJob}$`));
  await until("the job page", async () => (await headStatus().innerText()) === "Running");
  assert.ok(await page.getByTestId("request").isVisible(), "the request is shown");
  assert.match(await page.getByTestId("timeline").innerText(), /created/);
  const cancel = page.getByTestId("cancel");
  await cancel.waitFor();
  page.once("dialog", (dialog) => dialog.accept());
  await cancel.click();
  await until("the status to become Cancelled", async () => (await headStatus().innerText()) === "Cancelled", { timeout: 15_000 });
  await page.getByTestId("cancel").waitFor({ state: "detached" });
  await same();
  await screenshot("job-cancelled.png");

  // The customer sees it too.
  const seen = await getJob(bigJob);
  assert.equal(seen.Status, "Cancelled", `GetOrderSummaryJob answered ${JSON.stringify(seen)}`);
  assert.deepEqual(problems, []);
});

step("a failed job: Retry makes a new job that succeeds live, and its file downloads", { timeout: 90_000 }, async () => {
  // A real, small job whose request the failed one copies.
  const now = Math.floor(Date.now() / 1000);
  const small = await submit(now - 3 * 3600, now + 3600);
  await until("the small job to succeed", async () => {
    const job = await getJob(small, 5);
    assert.ok(!["Failed", "Cancelled"].includes(job.Status), `the small job ended ${job.Status}: ${job.ErrorMessage}`);
    return job.Status === "Succeeded";
  }, { timeout: 60_000, interval: 50 });

  const failed = randomUUID();
  const message = "e2e: Postgres went away <b>mid-export</b>";
  psql(`INSERT INTO summary_jobs (id, company_id, request, request_hash, status, attempts, error_message, worker_id,
                                  created_at, started_at, finished_at, heartbeat_at)
        SELECT ${sqlText(failed)}::uuid, company_id, request, request_hash, 'failed', 1, ${sqlText(message)}, 'e2e-worker',
               now() - interval '90 seconds', now() - interval '80 seconds', now() - interval '60 seconds', now() - interval '60 seconds'
          FROM summary_jobs WHERE id = ${sqlText(small)}::uuid`);

  const same = await mark();
  await page.goto(`${BASE}/admin#/jobs/${failed}`);
  await until("the failed job's page", async () => (await headStatus().innerText()) === "Failed");
  // The message is text, not markup.
  assert.equal(await page.getByTestId("error-message").innerText(), message);
  assert.equal(await page.getByTestId("error-message").locator("b").count(), 0);
  const retry = page.getByTestId("retry");
  await retry.waitFor();
  assert.match(await page.getByTestId("job-actions").innerText(), /new job/i, "the UI says a retry makes a new job");
  assert.equal(await page.getByTestId("cancel").count(), 0);
  assert.equal(await page.getByTestId("download").count(), 0);
  await retry.click();

  const link = page.getByTestId("retry-link");
  await link.waitFor();
  const fresh = (await link.innerText()).trim();
  assert.match(fresh, /^[0-9a-f-]{36}$/);
  assert.notEqual(fresh, failed);
  await until("the old job to list its retry", async () => (await page.getByTestId("retries").innerText()).includes(fresh));
  assert.equal(await headStatus().innerText(), "Failed", "the old job stays failed");

  await link.click();
  await page.waitForURL(new RegExp(`#/jobs/${fresh}$`));
  assert.match(await page.getByTestId("retry-of").innerText(), new RegExp(failed));
  await until("the new job to succeed", async () => (await headStatus().innerText()) === "Succeeded", { timeout: 60_000 });
  await same();
  const download = page.getByTestId("download");
  await download.waitFor();
  assert.match(await page.getByTestId("file-name").innerText(), /\.xlsx$/);
  await until("the attempt's outcome", async () => /succeeded/.test(await page.getByTestId("attempts").innerText()));
  await screenshot("job.png");

  const [file] = await Promise.all([page.waitForEvent("download"), download.click()]);
  const bytes = readFileSync(await file.path());
  assert.ok(bytes.length > 1000, `a workbook of ${bytes.length} bytes`);
  assert.equal(bytes.subarray(0, 2).toString("latin1"), "PK", "the download is an xlsx (zip)");
  console.log(`downloaded ${file.suggestedFilename()} (${bytes.length} bytes)`);
  assert.deepEqual(problems, []);
});

step("overview, workers, companies and webhooks; a lost session goes back to sign-in; sign out", { timeout: 60_000 }, async () => {
  await page.getByRole("link", { name: "Overview", exact: true }).click();
  await until("the last hour's counts", async () => {
    const text = await page.getByTestId("overview-last-hour").innerText();
    const m = /([\d,]+) succeeded, ([\d,]+) failed, ([\d,]+) cancelled/.exec(text);
    return m && Number(m[1].replace(/,/g, "")) >= 2 && Number(m[2]) >= 1 && Number(m[3]) >= 1;
  });
  assert.ok((await page.getByTestId("overview-chart").locator("rect.bar.succeeded").count()) >= 1, "a succeeded bar in the chart");
  assert.match(await page.getByTestId("count-cancelled").innerText(), /Cancelled\s*1/);
  await screenshot("overview.png");

  await page.getByRole("link", { name: "Jobs", exact: true }).click();
  await page.locator("[data-testid=job-row]").first().waitFor();
  await page.getByTestId("filter-status").selectOption("cancelled");
  await page.getByRole("button", { name: "Apply" }).click();
  await page.waitForURL(/#\/jobs\?status=cancelled$/);
  await until("only the cancelled job listed", async () => {
    const ids = await page.locator("[data-testid=job-row]").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-job-id")));
    return ids.length === 1 && ids[0] === bigJob;
  });
  await screenshot("jobs.png");

  await page.getByRole("link", { name: "Workers", exact: true }).click();
  const worker = page.locator("[data-testid=worker-row]").first();
  await worker.waitFor();
  assert.equal(await worker.getAttribute("class").then((c) => /\bstale\b/.test(c || "")), false, "the worker is live");
  assert.doesNotMatch(await worker.innerText(), /stale/i);

  await page.getByRole("link", { name: "Companies", exact: true }).click();
  const company = page.locator('[data-testid=company-row][data-company-id="1"]');
  await company.waitFor();
  assert.match(await company.locator("[data-testid=cap-bar]").innerText(), /\d+ \/ \d+/);

  // A webhook whose receiver is down: a job's end, its failed delivery on
  // the job page, and the endpoint failing on the Webhooks page.
  const hook = await publicCall({ Action: "CreateOrderSummaryWebhook", URL: "http://127.0.0.1:9/hook" });
  const endedJob = await submit(Math.floor(Date.now() / 1000) - 7 * 86400, Math.floor(Date.now() / 1000) - 6 * 86400);
  await publicCall({ Action: "CancelOrderSummaryJob", JobId: endedJob });
  await page.getByRole("link", { name: "Webhooks", exact: true }).click();
  const endpoint = page.locator(`[data-testid=webhook-row][data-webhook-id="${hook.WebhookId}"]`);
  await until("the endpoint failing with its last failure", async () => {
    const text = await endpoint.innerText().catch(() => "");
    return /failing/.test(text) && /could not connect/.test(text);
  });
  await screenshot("webhooks.png");
  await page.goto(`${BASE}/admin#/jobs/${endedJob}`);
  const delivery = page.locator("[data-testid=job-webhook-row]").first();
  await until("the job's event and its delivery", async () => /order_summary\.(cancelled|succeeded)[\s\S]*127\.0\.0\.1:9[\s\S]*could not connect/.test(await delivery.innerText().catch(() => "")));

  // The session ends elsewhere: the next poll answers 401 and the console goes to sign-in.
  const saved = await context.cookies();
  sessionEnded = true;
  await context.clearCookies();
  await page.getByLabel("Operator token").waitFor({ timeout: 10_000 });
  assert.equal(new URL(page.url()).pathname, "/admin");

  // Back in, then out through the Sign out button.
  await context.addCookies(saved);
  await page.reload();
  sessionEnded = false;
  await page.getByTestId("stat-queue-depth").waitFor();
  await page.getByTestId("sign-out").click();
  await page.getByLabel("Operator token").waitFor();
  assert.equal(new URL(page.url()).pathname, "/admin");
  assert.equal((await context.cookies()).filter((c) => c.name === "ordersum_admin" && c.value).length, 0, "sign-out clears the cookie");
  // Whether the server also forgot the session (the spec asks only that the cookie is cleared).
  const replay = await fetch(`${BASE}/admin/api/overview`, {
    headers: { Cookie: saved.map((c) => `${c.name}=${c.value}`).join("; ") },
  });
  console.log(`the signed-out session's cookie, sent again, answers ${replay.status}`);
  assert.deepEqual(problems, []);
});
