//! Answering the client directly from a hook: whole bodies and errors (OpenAI's shape, or
//! the client dialect's).

use crate::api::DialectKind;
use crate::error::ApiError;
use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;

/// The request's id (set on its header by `request_filter`), echoed on its response.
pub(crate) fn echo_request_id(
    session: &Session,
    header: &mut ResponseHeader,
) -> pingora::Result<()> {
    if let Some(id) = session.req_header().headers.get(super::request_id::HEADER) {
        header.insert_header(super::request_id::HEADER, id.clone())?;
    }
    Ok(())
}

/// A whole body with its content type and extra headers.
pub(crate) async fn body(
    session: &mut Session,
    status: u16,
    body: Bytes,
    content_type: &str,
    extra: &[(&str, String)],
) -> pingora::Result<()> {
    let mut header = ResponseHeader::build(status, Some(5 + extra.len()))?;
    echo_request_id(session, &mut header)?;
    header.insert_header("content-type", content_type.to_string())?;
    header.insert_header("content-length", body.len().to_string())?;
    header.insert_header("cache-control", "no-store")?;
    for (name, value) in extra {
        header.insert_header(name.to_string(), value.as_str())?;
    }
    session
        .write_response_header(Box::new(header), false)
        .await?;
    session.write_response_body(Some(body), true).await
}

pub(crate) async fn json(session: &mut Session, status: u16, json: Bytes) -> pingora::Result<()> {
    body(session, status, json, "application/json", &[]).await
}

pub(crate) async fn error(
    session: &mut Session,
    dialect: DialectKind,
    err: &ApiError,
) -> pingora::Result<()> {
    let extra: Vec<(&str, String)> = err
        .retry_after
        .iter()
        .map(|r| ("retry-after", r.clone()))
        .collect();
    body(
        session,
        err.status,
        dialect.error_body(err),
        "application/json",
        &extra,
    )
    .await
}
