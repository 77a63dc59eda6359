//! The webhook actions: CreateOrderSummaryWebhook, ListOrderSummaryWebhooks,
//! DeleteOrderSummaryWebhook, RotateOrderSummaryWebhookSecret,
//! ListOrderSummaryWebhookDeliveries and RedeliverOrderSummaryWebhook. Every
//! query is scoped to the caller's company: another company's endpoint or
//! event answers exactly like one that does not exist.

use std::time::Duration;

use ordersum_model::store::webhooks::{self as store, Endpoint, LoggedAttempt, NewEndpoint};
use ordersum_model::{ApiError, Params, store::jobs::lock_company};
use ordersum_webhooks::policy::{Refusal, TargetHost};
use ordersum_webhooks::{EVENT_TYPES, send, sign};
use serde::Serialize;
use uuid::Uuid;

use crate::answers::Answer;
use crate::error::{Error, Result};
use crate::state::AppState;

/// How long the secret a rotation replaces keeps signing.
pub const ROTATION_OVERLAP: Duration = Duration::from_secs(24 * 3600);
/// Longest `Description`, in characters.
const MAX_DESCRIPTION: usize = 256;
const DEFAULT_LIST_LIMIT: i64 = 20;
const MAX_LIST_LIMIT: i64 = 100;
/// Longest `EventId` looked up.
const MAX_EVENT_ID: usize = 64;

/// An endpoint as answered (never its secret, except `Secret` where given).
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebhookView {
    pub webhook_id: Uuid,
    #[serde(rename = "URL")]
    pub url: String,
    pub events: Vec<String>,
    pub description: String,
    pub disabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivery_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_delivery_time: Option<i64>,
    pub create_time: i64,
    /// Only in the answers of Create and Rotate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl WebhookView {
    fn new(endpoint: Endpoint, secret: Option<String>) -> Self {
        WebhookView {
            webhook_id: endpoint.id,
            url: endpoint.url,
            events: endpoint.events,
            description: endpoint.description,
            disabled: endpoint.disabled,
            disabled_reason: endpoint.disabled_reason,
            last_delivery_status: endpoint.last_delivery_status,
            last_delivery_time: endpoint.last_delivery_time.map(|t| t.timestamp()),
            create_time: endpoint.created_at.timestamp(),
            secret,
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct WebhookList {
    pub webhooks: Vec<WebhookView>,
}

/// One attempt of the delivery log.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliveryView {
    pub event_id: String,
    pub event_type: String,
    pub job_id: Uuid,
    /// Unix milliseconds.
    pub time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_status: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub duration_ms: i32,
    /// Unix milliseconds of the next try, when one is scheduled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_try: Option<i64>,
}

impl From<LoggedAttempt> for DeliveryView {
    fn from(a: LoggedAttempt) -> Self {
        DeliveryView {
            event_id: a.event_id,
            event_type: a.event_type,
            job_id: a.job_id,
            time: a.attempted_at.timestamp_millis(),
            http_status: a.http_status,
            error: a.error,
            duration_ms: a.duration_ms,
            next_try: a.next_at.map(|t| t.timestamp_millis()),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DeliveryList {
    pub deliveries: Vec<DeliveryView>,
    pub total_count: i64,
}

pub async fn create(state: &AppState, company_id: i64, params: &Params) -> Result<Answer> {
    let url = params.text("URL")?.ok_or(ApiError::MissingParam("URL"))?;
    check_url(state, url).await?;
    let events = events(params)?;
    let description = params.scalar("Description")?.unwrap_or("").trim();
    if description.chars().count() > MAX_DESCRIPTION {
        return Err(ApiError::Refused(
            "Description",
            format!("at most {MAX_DESCRIPTION} characters"),
        )
        .into());
    }
    let id = Uuid::now_v7();
    let (secret, stored) = new_secret(state, id)?;
    let cap = state.settings.webhooks_per_company;
    let mut tx = state.pool.begin().await?;
    lock_company(&mut tx, company_id).await?;
    let new = NewEndpoint {
        id,
        company_id,
        url: url.trim(),
        events: &events,
        description,
        secret: &stored,
    };
    let endpoint = store::insert_endpoint(&mut tx, &new, cap)
        .await?
        .ok_or(ApiError::TooManyWebhooks(cap))?;
    tx.commit().await?;
    tracing::info!(company_id, webhook_id = %id, "webhook created");
    Ok(Answer::Webhook(WebhookView::new(endpoint, Some(secret))))
}

pub async fn list(state: &AppState, company_id: i64, _params: &Params) -> Result<Answer> {
    let endpoints = store::list_endpoints(&state.pool, company_id).await?;
    let webhooks = endpoints
        .into_iter()
        .map(|e| WebhookView::new(e, None))
        .collect();
    Ok(Answer::Webhooks(WebhookList { webhooks }))
}

pub async fn delete(state: &AppState, company_id: i64, params: &Params) -> Result<Answer> {
    let id = webhook_id(params)?;
    if !store::delete_endpoint(&state.pool, company_id, id).await? {
        return Err(ApiError::bad("WebhookId").into());
    }
    tracing::info!(company_id, webhook_id = %id, "webhook deleted");
    Ok(Answer::Done(Done {}))
}

pub async fn rotate(state: &AppState, company_id: i64, params: &Params) -> Result<Answer> {
    let id = webhook_id(params)?;
    let (secret, stored) = new_secret(state, id)?;
    let endpoint = store::rotate_secret(&state.pool, company_id, id, &stored, ROTATION_OVERLAP)
        .await?
        .ok_or_else(|| ApiError::bad("WebhookId"))?;
    tracing::info!(company_id, webhook_id = %id, "webhook secret rotated");
    Ok(Answer::Webhook(WebhookView::new(endpoint, Some(secret))))
}

pub async fn deliveries(state: &AppState, company_id: i64, params: &Params) -> Result<Answer> {
    let id = webhook_id(params)?;
    let offset = params.int("Offset", 0, i64::MAX)?.unwrap_or(0);
    let limit = params
        .int("Limit", 1, MAX_LIST_LIMIT)?
        .unwrap_or(DEFAULT_LIST_LIMIT);
    store::get_endpoint(&state.pool, company_id, id)
        .await?
        .ok_or_else(|| ApiError::bad("WebhookId"))?;
    let (page, total) = store::list_attempts(&state.pool, id, offset, limit).await?;
    Ok(Answer::Deliveries(DeliveryList {
        deliveries: page.into_iter().map(DeliveryView::from).collect(),
        total_count: total,
    }))
}

pub async fn redeliver(state: &AppState, company_id: i64, params: &Params) -> Result<Answer> {
    let id = webhook_id(params)?;
    let event_id = params
        .text("EventId")?
        .ok_or(ApiError::MissingParam("EventId"))?;
    if event_id.len() > MAX_EVENT_ID {
        return Err(ApiError::bad("EventId").into());
    }
    let mut tx = state.pool.begin().await?;
    store::get_endpoint(&mut *tx, company_id, id)
        .await?
        .ok_or_else(|| ApiError::bad("WebhookId"))?;
    if !store::event_exists(&mut *tx, company_id, event_id).await? {
        return Err(ApiError::bad("EventId").into());
    }
    store::redeliver(&mut tx, id, event_id).await?;
    tx.commit().await?;
    Ok(Answer::Done(Done {}))
}

/// The answer of an action that returns nothing but its RetCode.
#[derive(Debug, Serialize)]
pub struct Done {}

fn webhook_id(params: &Params) -> Result<Uuid> {
    Ok(params.uuid("WebhookId")?)
}

/// A new secret for endpoint `id`, and the form it is stored in (sealed,
/// with the endpoint id as associated data, when key encryption is on).
fn new_secret(state: &AppState, id: Uuid) -> Result<(String, String)> {
    let secret = sign::new_secret();
    let stored = state.keys.cipher().store_form(&id.to_string(), &secret)?;
    Ok((secret, stored))
}

/// `Events.N`: known types, no repeats; none given means all.
fn events(params: &Params) -> Result<Vec<String>> {
    let given = params.list("Events");
    if given.is_empty() {
        return Ok(EVENT_TYPES.iter().map(|e| (*e).to_owned()).collect());
    }
    let mut events: Vec<String> = Vec::new();
    for event in given {
        let event = event.trim();
        if !EVENT_TYPES.contains(&event) {
            let shown: String = event.chars().take(64).collect();
            return Err(ApiError::Refused(
                "Events",
                format!(
                    "unknown event type {shown:?} (known: {})",
                    EVENT_TYPES.join(", ")
                ),
            )
            .into());
        }
        if !events.iter().any(|e| e == event) {
            events.push(event.to_owned());
        }
    }
    Ok(events)
}

/// Refuses a URL the policy refuses, naming why: its form and an address
/// literal at once, a name that resolves now to a refused address too (a
/// name that does not resolve yet is accepted: each delivery resolves it
/// again and checks what it finds).
async fn check_url(state: &AppState, url: &str) -> Result<()> {
    let policy = state.settings.webhook_policy.policy();
    let refuse = |r: Refusal| Error::Api(ApiError::Refused("URL", r.to_string()));
    let target = policy.check_url(url).map_err(refuse)?;
    if let TargetHost::Name(_) = target.host {
        match send::checked_addrs(&policy, &target).await {
            Ok(_) | Err(Refusal::NoAddress(_)) => {}
            Err(refusal) => return Err(refuse(refusal)),
        }
    }
    Ok(())
}
