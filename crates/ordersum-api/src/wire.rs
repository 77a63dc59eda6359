//! UCloud's wire conventions: parameters from the query string and a form or
//! JSON body, and the `{"Action": "<Action>Response", "RetCode": …}` envelope.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ordersum_model::{ApiError, Params};
use serde::Serialize;
use uuid::Uuid;

/// Header UCloud puts a request id in, on every answer.
pub const REQUEST_UUID_HEADER: &str = "x-ucloud-request-uuid";

/// The parameters of a call: the query string, then the body, whose encoding
/// is taken from `Content-Type` (a body without one is JSON if it looks like
/// an object, else a form). Any other body is 230.
pub fn read_params(
    query: Option<&str>,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Params, ApiError> {
    let mut params = query
        .map(|q| Params::from_urlencoded(q.as_bytes()))
        .unwrap_or_default();
    let body = body.trim_ascii();
    if body.is_empty() {
        return Ok(params);
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let from_body =
        if content_type.contains("json") || (content_type.is_empty() && body.starts_with(b"{")) {
            Params::from_json(body)
        } else if content_type.is_empty()
            || content_type.starts_with("application/x-www-form-urlencoded")
        {
            Some(Params::from_urlencoded(body))
        } else {
            None
        };
    params.extend(from_body.ok_or_else(|| ApiError::bad("Body"))?);
    Ok(params)
}

/// One API answer's body: `Action`, `RetCode`, then the action's answer
/// or the refusal's `Message`.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope<T> {
    action: String,
    ret_code: i32,
    #[serde(flatten)]
    body: Body<T>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Body<T> {
    Answer(T),
    Refusal {
        #[serde(rename = "Message")]
        message: String,
    },
}

/// One API answer: always HTTP 200, the outcome in `RetCode`.
pub fn envelope<T: Serialize>(
    action: &str,
    request_id: Uuid,
    outcome: Result<T, ApiError>,
) -> Response {
    let (ret_code, body) = match outcome {
        Ok(answer) => (0, Body::Answer(answer)),
        Err(err) => (
            err.ret_code(),
            Body::Refusal {
                message: err.to_string(),
            },
        ),
    };
    let envelope = Envelope {
        action: format!("{action}Response"),
        ret_code,
        body,
    };
    let mut response = Json(envelope).into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert(REQUEST_UUID_HEADER, value);
    }
    response
}

/// An API answer refusing the call.
pub fn refusal(action: &str, request_id: Uuid, err: ApiError) -> Response {
    envelope::<()>(action, request_id, Err(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("header"),
        );
        h
    }

    #[test]
    fn query_and_body_are_one_parameter_set() {
        let params = read_params(
            Some("Action=A"),
            &headers("application/x-www-form-urlencoded"),
            b"B=1",
        )
        .expect("form");
        assert_eq!(params.signing_string(), "ActionAB1");
    }

    #[test]
    fn a_body_of_another_kind_is_not_available() {
        let err = read_params(None, &headers("text/plain"), b"hello").expect_err("refused");
        assert_eq!(err, ApiError::bad("Body"));
        let err = read_params(None, &headers("application/json"), b"[1]").expect_err("refused");
        assert_eq!(err, ApiError::bad("Body"));
    }
}
