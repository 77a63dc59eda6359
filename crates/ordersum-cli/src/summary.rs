//! `ordersum summary`: signs a `DownloadOrderSummary` call as UCloud's SDKs
//! do, follows the job with a progress bar fed by its `Progress`, and
//! downloads the workbook from the presigned URL.

mod file;

pub use file::safe_file_name;
use file::{create_file, create_new_file, save_download, start_download};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{NaiveDate, TimeZone};
use chrono_tz::Tz;
use indicatif::{ProgressBar, ProgressStyle};
use ordersum_model::{JobStatus, JobView, Params, signature};
use serde_json::Value;

/// `ordersum summary` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct SummaryArgs {
    /// Window start: Unix seconds, `YYYY-MM-DD` (midnight in --time-zone) or RFC 3339.
    #[arg(long)]
    pub start: String,
    /// Window end (exclusive), same forms as --start.
    #[arg(long)]
    pub end: String,
    #[arg(long = "resource-id")]
    pub resource_ids: Vec<String>,
    #[arg(long = "model-id")]
    pub model_ids: Vec<String>,
    #[arg(long = "pricing-unit")]
    pub pricing_units: Vec<i32>,
    #[arg(long = "order-type")]
    pub order_types: Vec<i32>,
    #[arg(long = "charge-type")]
    pub charge_types: Vec<i32>,
    #[arg(long = "organization-id")]
    pub organization_ids: Vec<i64>,
    #[arg(long = "region")]
    pub regions: Vec<String>,
    #[arg(long = "pricing-sku")]
    pub pricing_skus: Vec<String>,
    /// `modelverse` or `sandbox`.
    #[arg(long = "product-code")]
    pub product_codes: Vec<String>,
    /// IANA time zone of the workbook's times and of date-only --start/--end.
    #[arg(long)]
    pub time_zone: Option<String>,
    /// Where to write the workbook (default: the server's file name, here).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// The API's Action endpoint.
    #[arg(
        long,
        env = "ORDERSUM_API_URL",
        default_value = "http://127.0.0.1:8080/"
    )]
    pub api_url: String,
    #[arg(long, env = "ORDERSUM_PUBLIC_KEY")]
    pub public_key: String,
    #[arg(long, env = "ORDERSUM_PRIVATE_KEY", hide_env_values = true)]
    pub private_key: String,
    /// Give up following the job after this many seconds.
    #[arg(long, default_value_t = 3600)]
    pub timeout_secs: u64,
}

/// Submits, follows and downloads; prints where the file is.
pub async fn run(args: SummaryArgs) -> anyhow::Result<()> {
    let tz: Tz = match &args.time_zone {
        Some(zone) => zone
            .parse()
            .map_err(|_| anyhow::anyhow!("unknown time zone {zone:?}"))?,
        None => Tz::UTC,
    };
    let client = Client {
        http: reqwest::Client::new(),
        args: &args,
    };
    let start = parse_time(&args.start, tz).context("--start")?;
    let end = parse_time(&args.end, tz).context("--end")?;
    let submitted = std::time::Instant::now();
    let answer = client.call(&download_params(&args, start, end)).await?;
    let job_id = answer["JobId"]
        .as_str()
        .context("the answer has no JobId")?
        .to_owned();
    eprintln!("job {job_id} {}", answer["Status"].as_str().unwrap_or("?"));

    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout_secs);
    let job = loop {
        let answer = client
            .call(&pairs([
                ("Action", "GetOrderSummaryJob"),
                ("JobId", &job_id),
                ("WaitSeconds", "2"),
            ]))
            .await?;
        let job: JobView = serde_json::from_value(answer).context("reading the job")?;
        bar.set_message(format!(
            "{:?}: {} paid, {} unpaid rows",
            job.status, job.progress.paid_rows, job.progress.unpaid_rows
        ));
        if !job.status.is_active() {
            break job;
        }
        if tokio::time::Instant::now() > deadline {
            bar.abandon();
            bail!(
                "job {job_id} still {:?} after {}s",
                job.status,
                args.timeout_secs
            );
        }
    };
    bar.finish();
    let produced = submitted.elapsed();
    let Some(download) = job.data.filter(|_| job.status == JobStatus::Succeeded) else {
        bail!(
            "job {job_id} ended {:?}: {}",
            job.status,
            job.error_message.unwrap_or_default()
        );
    };
    // The file is created only once the download has answered 200, so a
    // refused or expired link leaves no empty file and no truncated one.
    let response = start_download(&client.http, &download.download_url).await?;
    // The server's name is only a suggestion: a base name in this directory,
    // never over an existing file. `--output` is the user's own choice.
    let (path, file) = match &args.output {
        Some(path) => (path.clone(), create_file(path).await?),
        None => create_new_file(&safe_file_name(&download.file_name)).await?,
    };
    let size = save_download(response, file).await?;
    println!("{}", path.display());
    eprintln!(
        "{} paid and {} unpaid orders, {size} bytes; succeeded {:.2} s after submitting, downloaded in {:.2} s",
        job.progress.paid_rows,
        job.progress.unpaid_rows,
        produced.as_secs_f64(),
        (submitted.elapsed() - produced).as_secs_f64()
    );
    Ok(())
}

struct Client<'a> {
    http: reqwest::Client,
    args: &'a SummaryArgs,
}

impl Client<'_> {
    /// A form POST signed with the key pair; a RetCode other than 0 is an error.
    async fn call(&self, params: &[(String, String)]) -> anyhow::Result<Value> {
        let mut form: Vec<(String, String)> = params.to_vec();
        form.push(("PublicKey".into(), self.args.public_key.clone()));
        // A signed time and a nonce make every call's signature new, so the
        // CLI keeps working where the API refuses replays
        // (ORDERSUM_REQUIRE_TIMESTAMP); elsewhere they are ignored.
        form.push((
            "Timestamp".into(),
            chrono::Utc::now().timestamp().to_string(),
        ));
        form.push(("Nonce".into(), format!("{:016x}", rand::random::<u64>())));
        let signature = signature::sign(
            &Params::from_pairs(form.iter().cloned()),
            &self.args.private_key,
        );
        form.push(("Signature".into(), signature));
        let response = self
            .http
            .post(&self.args.api_url)
            .form(&form)
            .send()
            .await
            .with_context(|| format!("calling {}", self.args.api_url))?;
        let body: Value = response.json().await.context("reading the API's answer")?;
        match body["RetCode"].as_i64() {
            Some(0) => Ok(body),
            Some(code) => bail!("RetCode {code}: {}", body["Message"].as_str().unwrap_or("")),
            None => bail!("not an API answer: {body}"),
        }
    }
}

fn pairs<const N: usize>(items: [(&str, &str); N]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn download_params(args: &SummaryArgs, start: i64, end: i64) -> Vec<(String, String)> {
    let (start, end) = (start.to_string(), end.to_string());
    let mut params = pairs([
        ("Action", "DownloadOrderSummary"),
        ("StartTime", &start),
        ("EndTime", &end),
        ("WaitSeconds", "2"),
    ]);
    if let Some(zone) = &args.time_zone {
        params.push(("TimeZone".into(), zone.clone()));
    }
    let lists: [(&'static str, Vec<String>); 9] = [
        ("ResourceIds", args.resource_ids.clone()),
        ("ModelIds", args.model_ids.clone()),
        (
            "PricingUnits",
            args.pricing_units.iter().map(i32::to_string).collect(),
        ),
        (
            "OrderTypes",
            args.order_types.iter().map(i32::to_string).collect(),
        ),
        (
            "ChargeTypes",
            args.charge_types.iter().map(i32::to_string).collect(),
        ),
        (
            "OrganizationIds",
            args.organization_ids.iter().map(i64::to_string).collect(),
        ),
        ("Regions", args.regions.clone()),
        ("PricingSkus", args.pricing_skus.clone()),
        ("ProductCodes", args.product_codes.clone()),
    ];
    for (key, items) in lists {
        for (i, item) in items.into_iter().enumerate() {
            params.push((format!("{key}.{i}"), item));
        }
    }
    params
}

/// Unix seconds, a date (midnight in `tz`) or an RFC 3339 time.
pub fn parse_time(value: &str, tz: Tz) -> anyhow::Result<i64> {
    if let Ok(secs) = value.parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(date) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        let midnight = date.and_hms_opt(0, 0, 0).context("midnight")?;
        let local = tz
            .from_local_datetime(&midnight)
            .earliest()
            .context("no such local time")?;
        return Ok(local.timestamp());
    }
    let time = chrono::DateTime::parse_from_rfc3339(value)
        .with_context(|| format!("{value:?} is not Unix seconds, YYYY-MM-DD or RFC 3339"))?;
    Ok(time.timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use file::FALLBACK_FILE_NAME;

    #[test]
    fn times_are_read_as_seconds_dates_or_rfc3339() {
        assert_eq!(
            parse_time("1719792000", Tz::UTC).expect("secs"),
            1_719_792_000
        );
        assert_eq!(
            parse_time("2024-07-01", Tz::UTC).expect("date"),
            1_719_792_000
        );
        assert_eq!(
            parse_time("2024-07-01", chrono_tz::Asia::Shanghai).expect("date"),
            1_719_792_000 - 8 * 3600
        );
        assert_eq!(
            parse_time("2024-07-01T00:00:00Z", Tz::UTC).expect("rfc3339"),
            1_719_792_000
        );
        assert!(parse_time("July", Tz::UTC).is_err());
    }

    #[test]
    fn a_server_file_name_cannot_leave_the_current_directory() {
        for (given, kept) in [
            ("order-summary-1-2-abc.xlsx", "order-summary-1-2-abc.xlsx"),
            ("../../.bashrc", "bashrc"),
            ("/etc/cron.d/x", "x"),
            ("..\\..\\win.ini", "win.ini"),
            ("a/b/summary.xlsx", "summary.xlsx"),
            ("sum\nmary\u{1b}[31m.xlsx", "summary[31m.xlsx"),
        ] {
            assert_eq!(safe_file_name(given), kept, "{given:?}");
        }
    }

    #[test]
    fn an_unusable_server_file_name_falls_back_to_the_default() {
        let long = "x".repeat(300);
        for given in [
            "",
            "..",
            ".",
            "/",
            "dir/",
            " ",
            "\u{0}",
            "a/..",
            long.as_str(),
        ] {
            assert_eq!(safe_file_name(given), FALLBACK_FILE_NAME, "{given:?}");
        }
    }

    #[tokio::test]
    async fn a_file_name_already_taken_gets_a_number_instead_of_being_overwritten() {
        let dir = std::env::temp_dir().join(format!("ordersum-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let name = dir.join("summary.xlsx");
        std::fs::write(&name, b"mine").expect("write");
        let (path, _file) = create_new_file(name.to_str().expect("utf-8"))
            .await
            .expect("created");
        assert_eq!(path, dir.join("summary (1).xlsx"));
        assert_eq!(std::fs::read(&name).expect("read"), b"mine");
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
