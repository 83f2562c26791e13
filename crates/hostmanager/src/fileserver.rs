//! The fileserver: direct uploads and downloads with one-time grants, as
//! ToMaTo's (`/<grant>/upload`, `/<grant>/download`). The grant is the only
//! credential, so users' browsers and `curl` reach it without a client
//! certificate; it is served over TLS with the host's certificate.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::TryStreamExt;
use serde::Deserialize;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::error::HostError;
use crate::host::Host;

/// Largest accepted upload (a container's root file system archive).
pub const MAX_UPLOAD: u64 = 8 << 30;

/// The fileserver's routes.
pub fn router(host: Arc<Host>) -> Router {
    Router::new()
        .route("/{grant}/upload", post(upload).put(upload))
        .route("/{grant}/download", get(download))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_UPLOAD as usize))
        .with_state(host)
}

/// An error as the JSON body the API uses, with a fitting status.
pub fn error_response(e: &HostError) -> Response {
    rpc::RpcError::from(e.clone()).into_response()
}

async fn write_body(
    path: &std::path::Path,
    limit: Option<u64>,
    headers: &HeaderMap,
    request: axum::extract::Request,
) -> Result<u64, HostError> {
    // A grant's own limit (an executable archive's rextfv_max_size) is
    // enforced while the body arrives, not after it filled the disk.
    let check = |written: u64| match limit {
        Some(max) if written > max => {
            Err(HostError::invalid(format!("upload: larger than {max} bytes, this grant's limit (rextfv_max_size)")))
        }
        _ => Ok(()),
    };
    let tmp = path.with_extension("part");
    let mut file = tokio::fs::File::create(&tmp).await?;
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let mut written = 0u64;
    let result: Result<(), HostError> = async {
        if is_form {
            // ToMaTo's form: the file is the field `upload`.
            let mut form = <Multipart as axum::extract::FromRequest<()>>::from_request(request, &())
                .await
                .map_err(|e| HostError::invalid(format!("upload: {e}")))?;
            let mut found = false;
            while let Some(mut field) =
                form.next_field().await.map_err(|e| HostError::invalid(format!("upload: {e}")))?
            {
                if field.name() != Some("upload") {
                    continue;
                }
                found = true;
                while let Some(chunk) = field.chunk().await.map_err(|e| HostError::invalid(format!("upload: {e}")))? {
                    written += chunk.len() as u64;
                    check(written)?;
                    file.write_all(&chunk).await?;
                }
            }
            if !found {
                return Err(HostError::invalid("upload: the form has no field `upload`"));
            }
        } else {
            let mut stream = request.into_body().into_data_stream();
            while let Some(chunk) = stream.try_next().await.map_err(|e| HostError::invalid(format!("upload: {e}")))? {
                written += chunk.len() as u64;
                check(written)?;
                file.write_all(&chunk).await?;
            }
        }
        file.sync_all().await?;
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            tokio::fs::rename(&tmp, path).await?;
            Ok(written)
        }
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            Err(e)
        }
    }
}

async fn upload(
    State(host): State<Arc<Host>>,
    Path(grant): Path<String>,
    headers: HeaderMap,
    request: axum::extract::Request,
) -> Response {
    let g = match host.use_grant(&grant, "upload").await {
        Ok(g) => g,
        Err(e) => return error_response(&e),
    };
    let limit = g.max_size.and_then(|m| u64::try_from(m).ok());
    match write_body(std::path::Path::new(&g.path), limit, &headers, request).await {
        Ok(bytes) => axum::Json(json!({"received": bytes})).into_response(),
        Err(e) => error_response(&e),
    }
}

/// `?name=` and `?mimetype=` of a download.
#[derive(Debug, Deserialize)]
struct DownloadQuery {
    name: Option<String>,
    mimetype: Option<String>,
}

async fn download(
    State(host): State<Arc<Host>>,
    Path(grant): Path<String>,
    Query(q): Query<DownloadQuery>,
) -> Response {
    let g = match host.use_grant(&grant, "download").await {
        Ok(g) => g,
        Err(e) => return error_response(&e),
    };
    let file = match tokio::fs::File::open(&g.path).await {
        Ok(f) => f,
        Err(e) => return error_response(&HostError::host(format!("download: {e}"))),
    };
    // The grant is used up: the open file streams on after its name goes.
    let _ = tokio::fs::remove_file(&g.path).await;
    let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
    let name = q.name.unwrap_or_else(|| "download".into()).replace(['"', '/', '\\'], "_");
    let mime = q.mimetype.unwrap_or_else(|| "application/octet-stream".into());
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    (
        [
            (header::CONTENT_TYPE, mime),
            (header::CONTENT_LENGTH, len.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        body,
    )
        .into_response()
}
