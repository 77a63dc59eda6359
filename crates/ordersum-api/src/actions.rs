//! The single Action endpoint: read the parameters, check Action, the key and
//! the signature in UCloud's order, then run the action.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use ordersum_model::{ApiError, Params, signature};
use uuid::Uuid;

use crate::answers::Answer;
use crate::error::{Error, Result};
use crate::jobs;
use crate::metrics;
use crate::ratelimit::with_retry_after;
use crate::replay;
use crate::state::AppState;
use crate::webhooks;
use crate::wire;

/// The actions ordersum answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    DownloadOrderSummary,
    GetOrderSummaryJob,
    ListOrderSummaryJobs,
    CancelOrderSummaryJob,
    CreateOrderSummaryWebhook,
    ListOrderSummaryWebhooks,
    DeleteOrderSummaryWebhook,
    RotateOrderSummaryWebhookSecret,
    ListOrderSummaryWebhookDeliveries,
    RedeliverOrderSummaryWebhook,
}

impl Action {
    const ALL: [Action; 10] = [
        Action::DownloadOrderSummary,
        Action::GetOrderSummaryJob,
        Action::ListOrderSummaryJobs,
        Action::CancelOrderSummaryJob,
        Action::CreateOrderSummaryWebhook,
        Action::ListOrderSummaryWebhooks,
        Action::DeleteOrderSummaryWebhook,
        Action::RotateOrderSummaryWebhookSecret,
        Action::ListOrderSummaryWebhookDeliveries,
        Action::RedeliverOrderSummaryWebhook,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::DownloadOrderSummary => "DownloadOrderSummary",
            Action::GetOrderSummaryJob => "GetOrderSummaryJob",
            Action::ListOrderSummaryJobs => "ListOrderSummaryJobs",
            Action::CancelOrderSummaryJob => "CancelOrderSummaryJob",
            Action::CreateOrderSummaryWebhook => "CreateOrderSummaryWebhook",
            Action::ListOrderSummaryWebhooks => "ListOrderSummaryWebhooks",
            Action::DeleteOrderSummaryWebhook => "DeleteOrderSummaryWebhook",
            Action::RotateOrderSummaryWebhookSecret => "RotateOrderSummaryWebhookSecret",
            Action::ListOrderSummaryWebhookDeliveries => "ListOrderSummaryWebhookDeliveries",
            Action::RedeliverOrderSummaryWebhook => "RedeliverOrderSummaryWebhook",
        }
    }

    fn parse(name: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.name() == name)
    }
}

/// Longest unknown Action name echoed back in a 161 answer.
const MAX_ECHOED_ACTION: usize = 64;

/// `GET|POST /` and `/api`.
pub async fn endpoint(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let request_id = Uuid::new_v4();
    let params = body
        .map_err(|_| ApiError::bad("Body"))
        .and_then(|body| wire::read_params(query.as_deref(), &headers, &body));
    let (action_name, label, outcome) = match params {
        Ok(params) => call(&state, &params).await,
        Err(err) => (String::new(), "invalid", Err(Error::Api(err))),
    };
    let outcome = outcome.map_err(|err| {
        if !matches!(err, Error::Api(_)) {
            tracing::error!(%request_id, action = label, error = ?err, "call failed");
        }
        err.to_api_error()
    });
    let ret_code = outcome.as_ref().map_or_else(ApiError::ret_code, |_| 0);
    metrics::record_call(label, ret_code, started.elapsed());
    tracing::debug!(%request_id, action = label, ret_code, elapsed_ms = started.elapsed().as_millis() as u64, "call");
    match outcome {
        Err(err @ ApiError::RateLimited(_)) => {
            let response = wire::refusal(&action_name, request_id, err.clone());
            with_retry_after(response, &err)
        }
        outcome => wire::envelope(&action_name, request_id, outcome),
    }
}

/// Runs one call; answers the Action name to echo, a bounded metrics label
/// and the outcome.
async fn call(state: &AppState, params: &Params) -> (String, &'static str, Result<Answer>) {
    let raw_action = match params.text("Action") {
        Ok(Some(action)) => action,
        Ok(None) => {
            return (
                String::new(),
                "missing",
                Err(ApiError::MissingAction.into()),
            );
        }
        Err(err) => return (String::new(), "invalid", Err(err.into())),
    };
    let Some(action) = Action::parse(raw_action) else {
        let echoed: String = raw_action.chars().take(MAX_ECHOED_ACTION).collect();
        return (
            echoed.clone(),
            "unknown",
            Err(ApiError::UnknownAction(echoed).into()),
        );
    };
    let outcome = match authenticate(state, params).await {
        Ok(company_id) => run(state, action, company_id, params).await,
        Err(err) => Err(err),
    };
    (action.name().to_owned(), action.name(), outcome)
}

async fn run(state: &AppState, action: Action, company_id: i64, params: &Params) -> Result<Answer> {
    match action {
        Action::DownloadOrderSummary => jobs::download(state, company_id, params).await,
        Action::GetOrderSummaryJob => jobs::get(state, company_id, params).await,
        Action::ListOrderSummaryJobs => jobs::list(state, company_id, params).await,
        Action::CancelOrderSummaryJob => jobs::cancel(state, company_id, params).await,
        Action::CreateOrderSummaryWebhook => webhooks::create(state, company_id, params).await,
        Action::ListOrderSummaryWebhooks => webhooks::list(state, company_id, params).await,
        Action::DeleteOrderSummaryWebhook => webhooks::delete(state, company_id, params).await,
        Action::RotateOrderSummaryWebhookSecret => {
            webhooks::rotate(state, company_id, params).await
        }
        Action::ListOrderSummaryWebhookDeliveries => {
            webhooks::deliveries(state, company_id, params).await
        }
        Action::RedeliverOrderSummaryWebhook => {
            webhooks::redeliver(state, company_id, params).await
        }
    }
}

/// The company the call acts for: 170 without Signature or PublicKey, 172
/// for an unknown, disabled or over-long key, 171 for a wrong signature;
/// then (when timestamps are required) 220 / 230 without a fresh
/// `Timestamp`, 171 for a replayed call; then 154 over the key's rate. A
/// replay is refused before it counts, so whoever captured one call cannot
/// spend the key's quota with it.
async fn authenticate(state: &AppState, params: &Params) -> Result<i64> {
    let signature = params
        .text("Signature")?
        .ok_or(ApiError::MissingSignature)?;
    let public_key = params
        .text("PublicKey")?
        .ok_or(ApiError::MissingPublicKey)?;
    let key = state
        .keys
        .get(&state.pool, public_key)
        .await?
        .filter(|key| !key.disabled)
        .ok_or(ApiError::UnknownPublicKey)?;
    if !signature::verify(params, &key.private_key, signature) {
        return Err(Error::Api(ApiError::BadSignature));
    }
    replay::check(state, params, signature).await?;
    state.rate_limits.per_key.check(&key.public_key)?;
    Ok(key.company_id)
}
