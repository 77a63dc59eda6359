//! Completion webhooks: what an event looks like on the wire, how it is
//! signed (Standard Webhooks v1), when a failed delivery is tried again, and
//! where a delivery may go at all (the SSRF policy the API applies when an
//! endpoint is created and the worker at every delivery).

pub mod policy;
pub mod ranges;
pub mod schedule;
pub mod send;
pub mod sign;

use chrono::{DateTime, SecondsFormat, Utc};
use ordersum_model::JobStatus;
use serde::Serialize;
use uuid::Uuid;

pub use policy::{Networks, Policy, Ports, Refusal};

/// The event types, one per way a job ends.
pub const EVENT_TYPES: [&str; 4] = [
    "order_summary.succeeded",
    "order_summary.failed",
    "order_summary.cancelled",
    "order_summary.expired",
];

/// The operator's limits on where webhooks go; read by the API (checked
/// when an endpoint is created) and by the worker (checked at every
/// delivery), so both should be given the same values.
#[derive(Debug, Clone, clap::Args)]
pub struct PolicySettings {
    /// Networks (CIDR list) webhooks may reach although they are not public:
    /// loopback, RFC 1918, CGNAT, link-local and the like are refused
    /// unless listed here. A listed network is allowed on every port.
    #[arg(long, env = "ORDERSUM_WEBHOOK_ALLOWED_NETWORKS", default_value_t = Networks::default())]
    pub webhook_allowed_networks: Networks,
    /// Ports webhooks may use on public addresses besides 443 and 80
    /// (comma-separated).
    #[arg(long, env = "ORDERSUM_WEBHOOK_ALLOWED_PORTS", default_value_t = Ports::default())]
    pub webhook_allowed_ports: Ports,
    /// Accept `http://` webhook URLs (default: https only).
    #[arg(long, env = "ORDERSUM_WEBHOOK_ALLOW_HTTP", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_http: bool,
}

impl PolicySettings {
    pub fn policy(&self) -> Policy {
        Policy {
            allowed_networks: self.webhook_allowed_networks.clone(),
            allowed_ports: self.webhook_allowed_ports.clone(),
            allow_http: self.webhook_allow_http,
        }
    }
}

/// A job's end as the outbox holds it.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub kind: String,
    pub job_id: Uuid,
    pub status: JobStatus,
    pub file_name: Option<String>,
    pub file_size: Option<i64>,
    pub paid_rows: i64,
    pub unpaid_rows: i64,
    pub error_message: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// The body of a delivery: thin, no download link (the receiver asks
/// `GetOrderSummaryJob` for a fresh one).
#[derive(Debug, Serialize)]
struct Body<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: String,
    data: Data<'a>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct Data<'a> {
    job_id: Uuid,
    status: JobStatus,
    file_name: Option<&'a str>,
    file_size: Option<i64>,
    paid_rows: i64,
    unpaid_rows: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
}

impl Event {
    /// The JSON body, the same bytes on every try.
    pub fn body(&self) -> Vec<u8> {
        let body = Body {
            kind: &self.kind,
            timestamp: self.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
            data: Data {
                job_id: self.job_id,
                status: self.status,
                file_name: self.file_name.as_deref(),
                file_size: self.file_size,
                paid_rows: self.paid_rows,
                unpaid_rows: self.unpaid_rows,
                error_message: self.error_message.as_deref(),
            },
        };
        serde_json::to_vec(&body).unwrap_or_default()
    }
}
