//! The two ways to reach the server, behind one service type the generated clients use:
//! the native tonic channel (HTTP/2), and the host app's own HTTP stack speaking gRPC-Web
//! (watchOS gives ordinary apps no raw sockets).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tonic::body::Body;
use tonic::transport::Channel;
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder, ServiceExt};

use crate::error::{CoreResult, TaplineError};
use crate::model::{HttpHeader, HttpRequest, HttpResponse};

/// Boxed error inside the transport stack.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The transport's error, as one concrete type (a bare boxed error trips the compiler's
/// higher-ranked `Send` checks when the generated clients run in spawned tasks).
#[derive(Debug)]
pub(crate) struct TransportError(BoxError);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// What the generated clients run on.
pub(crate) type GrpcService =
    BoxCloneSyncService<http::Request<Body>, http::Response<Body>, TransportError>;

/// An HTTP stack the host app provides (URLSession, OkHttp, ...). The core calls it from a
/// background thread; it performs one request and returns the whole response.
#[uniffi::export(with_foreign)]
pub trait HttpTransport: Send + Sync {
    /// Performs `request` and returns the response (any HTTP status), or an error when no
    /// response came (offline, timeout).
    fn send(&self, request: HttpRequest) -> Result<HttpResponse, TaplineError>;
}

/// The native HTTP/2 channel; `https://` verifies the server with the platform's roots and
/// `ca_pem`, when given. Must be called inside a tokio runtime.
pub(crate) fn native(url: &str, ca_pem: Option<&str>) -> CoreResult<GrpcService> {
    let invalid = |what: String| crate::error::CoreError::Invalid(what);
    let mut endpoint =
        Channel::from_shared(url.to_owned()).map_err(|e| invalid(format!("server_url: {e}")))?;
    if url.starts_with("https://") {
        let mut tls = tonic::transport::ClientTlsConfig::new().with_native_roots();
        if let Some(pem) = ca_pem {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                return Err(invalid("ca_cert_pem: expected a PEM certificate".into()));
            }
            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| invalid(format!("server_url: {e}")))?;
    } else if ca_pem.is_some() {
        return Err(invalid(
            "ca_cert_pem: only for an https:// server_url".into(),
        ));
    }
    let channel = endpoint
        .connect_timeout(Duration::from_secs(5))
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10))
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(BoxCloneSyncService::new(
        channel.map_err(|e| TransportError(e.into())),
    ))
}

/// gRPC-Web over the host's HTTP transport.
pub(crate) fn host(url: &str, transport: Arc<dyn HttpTransport>) -> GrpcService {
    let service = ServiceBuilder::new()
        .layer(tonic_web::GrpcWebClientLayer::new())
        .service(HostHttp {
            base: url.trim_end_matches('/').to_owned(),
            transport,
        });
    let service = ServiceExt::<http::Request<Body>>::map_response(service, |r| r.map(Body::new));
    BoxCloneSyncService::new(ServiceExt::<http::Request<Body>>::map_err(
        service,
        TransportError,
    ))
}

/// Hands each HTTP request to the host's transport.
#[derive(Clone)]
struct HostHttp {
    base: String,
    transport: Arc<dyn HttpTransport>,
}

impl<B> Service<http::Request<B>> for HostHttp
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = http::Response<Full<Bytes>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let transport = self.transport.clone();
        let base = self.base.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.map_err(Into::into)?.to_bytes();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let request = HttpRequest {
                url: format!("{base}{path}"),
                method: parts.method.to_string(),
                headers: parts
                    .headers
                    .iter()
                    .filter_map(|(k, v)| {
                        Some(HttpHeader {
                            name: k.to_string(),
                            value: v.to_str().ok()?.to_owned(),
                        })
                    })
                    .collect(),
                body: body.to_vec(),
            };
            let response = tokio::task::spawn_blocking(move || transport.send(request)).await??;
            let mut builder = http::Response::builder().status(response.status);
            for h in &response.headers {
                builder = builder.header(h.name.as_str(), h.value.as_str());
            }
            Ok(builder.body(Full::new(Bytes::from(response.body)))?)
        })
    }
}
