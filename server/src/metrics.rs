//! Metrics in the Prometheus text format, on a separate admin address (`--metrics-listen`),
//! and a tracing span per RPC carrying a request id.
//!
//! Each server has its own registry (prometheus-client), so tests running several servers in
//! one process read each one's own figures. Gauges that are facts of the database (inbox
//! backlog, push queue depth) are read at scrape time.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::error::Result;
use crate::state::AppState;

/// Header naming a request: taken from the client when it is short and printable, else made
/// here; echoed in the response and logged with every line of the call.
pub const REQUEST_ID: &str = "x-request-id";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PushLabels {
    provider: &'static str,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    rpcs: Family<RpcLabels, Counter>,
    rpc_seconds: Family<RpcLabels, Histogram>,
    batch_jobs: Histogram,
    batch_seconds: Histogram,
    live_streams: Gauge,
    inbox_backlog: Gauge,
    push_queue: Gauge,
    pushes: Family<PushLabels, Counter>,
    refused: Family<LimitLabels, Counter>,
    pool: Family<PoolLabels, Gauge>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn latency_histogram() -> Histogram {
    // 0.25 ms to ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tapline");
        let rpcs = Family::<RpcLabels, Counter>::default();
        let rpc_seconds =
            Family::<RpcLabels, Histogram>::new_with_constructor(latency_histogram as fn() -> _);
        let batch_jobs = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        let batch_seconds = latency_histogram();
        let live_streams = Gauge::default();
        let inbox_backlog = Gauge::default();
        let push_queue = Gauge::default();
        let pushes = Family::<PushLabels, Counter>::default();
        let refused = Family::<LimitLabels, Counter>::default();
        let pool = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "rpc_requests",
            "Finished RPCs by method and gRPC code (a stream counts when it ends)",
            rpcs.clone(),
        );
        registry.register(
            "rpc_duration_seconds",
            "RPC duration by method and gRPC code, until the last byte (streams: their life)",
            rpc_seconds.clone(),
        );
        registry.register(
            "commit_batch_jobs",
            "Jobs per group-commit round (one transaction)",
            batch_jobs.clone(),
        );
        registry.register(
            "commit_batch_duration_seconds",
            "Duration of a group-commit round, from its first statement to its commit",
            batch_seconds.clone(),
        );
        registry.register(
            "live_streams",
            "Event streams open on this instance",
            live_streams.clone(),
        );
        registry.register(
            "inbox_backlog",
            "Inbox events not yet acknowledged by their device (all instances; read at scrape)",
            inbox_backlog.clone(),
        );
        registry.register(
            "push_queue_depth",
            "Devices with a pending wake-up push (all instances; read at scrape)",
            push_queue.clone(),
        );
        registry.register(
            "push_outcomes",
            "Push attempts by provider and outcome",
            pushes.clone(),
        );
        registry.register(
            "rate_limit_refusals",
            "Requests refused RESOURCE_EXHAUSTED by a rate limit",
            refused.clone(),
        );
        registry.register(
            "db_pool_connections",
            "Read-pool connections by state (read at scrape)",
            pool.clone(),
        );
        Metrics {
            registry,
            rpcs,
            rpc_seconds,
            batch_jobs,
            batch_seconds,
            live_streams,
            inbox_backlog,
            push_queue,
            pushes,
            refused,
            pool,
        }
    }
}

impl Metrics {
    /// An RPC ended with `code` after `took`.
    pub fn rpc(&self, method: &str, code: tonic::Code, took: Duration) {
        // Unknown paths all answer UNIMPLEMENTED: one label, whatever a client sends.
        let method = if code == tonic::Code::Unimplemented && !known_method(method) {
            "other".to_owned()
        } else {
            method.to_owned()
        };
        let labels = RpcLabels {
            method,
            code: code_name(code),
        };
        self.rpcs.get_or_create(&labels).inc();
        self.rpc_seconds
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A group-commit round of `jobs` took `took`.
    pub fn batch(&self, jobs: usize, took: Duration) {
        self.batch_jobs.observe(jobs as f64);
        self.batch_seconds.observe(took.as_secs_f64());
    }

    /// An event stream opened; the guard closes it when dropped.
    pub fn stream_opened(self: &Arc<Self>) -> StreamGuard {
        self.live_streams.inc();
        StreamGuard(self.clone())
    }

    /// A push attempt's outcome.
    pub fn push(&self, provider: &'static str, outcome: &'static str) {
        self.pushes
            .get_or_create(&PushLabels { provider, outcome })
            .inc();
    }

    /// A rate limit refused a request.
    pub fn refused(&self, limit: &'static str) {
        self.refused.get_or_create(&LimitLabels { limit }).inc();
    }

    /// The text exposition, after reading the database's gauges.
    pub async fn render(&self, state: &AppState) -> String {
        match database_gauges(state.db.pool()).await {
            Ok((backlog, queue)) => {
                self.inbox_backlog.set(backlog);
                self.push_queue.set(queue);
            }
            Err(e) => tracing::warn!(error = %e, "metrics: database gauges unavailable"),
        }
        let pool = state.db.pool();
        let idle = i64::try_from(pool.num_idle()).unwrap_or(i64::MAX);
        let size = i64::from(pool.size());
        self.pool
            .get_or_create(&PoolLabels { state: "idle" })
            .set(idle);
        self.pool
            .get_or_create(&PoolLabels { state: "busy" })
            .set((size - idle).max(0));
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "metrics: encoding failed");
        }
        out
    }
}

/// Unacknowledged inbox events and pending wake-ups, over every device.
async fn database_gauges(pool: &sqlx::AnyPool) -> Result<(i64, i64)> {
    let row: (i64, i64) = sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM inbox i JOIN devices d ON d.id = i.device_id \
                 WHERE i.seq > d.acked_seq), \
                (SELECT COUNT(*) FROM push_jobs)",
    )
    .fetch_one(pool)
    .await?;
    Ok(row)
}

/// Keeps the live-stream gauge up while a stream is open.
#[derive(Debug)]
pub struct StreamGuard(Arc<Metrics>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.live_streams.dec();
    }
}

fn known_method(path: &str) -> bool {
    path.starts_with("/tapline.v1.") || path.starts_with("/grpc.")
}

fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code as C;
    match code {
        C::Ok => "OK",
        C::Cancelled => "CANCELLED",
        C::Unknown => "UNKNOWN",
        C::InvalidArgument => "INVALID_ARGUMENT",
        C::DeadlineExceeded => "DEADLINE_EXCEEDED",
        C::NotFound => "NOT_FOUND",
        C::AlreadyExists => "ALREADY_EXISTS",
        C::PermissionDenied => "PERMISSION_DENIED",
        C::ResourceExhausted => "RESOURCE_EXHAUSTED",
        C::FailedPrecondition => "FAILED_PRECONDITION",
        C::Aborted => "ABORTED",
        C::OutOfRange => "OUT_OF_RANGE",
        C::Unimplemented => "UNIMPLEMENTED",
        C::Internal => "INTERNAL",
        C::Unavailable => "UNAVAILABLE",
        C::DataLoss => "DATA_LOSS",
        C::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Serves `GET /metrics` on `listener` until the server drains.
pub async fn serve_admin(listener: TcpListener, state: AppState) {
    use hyper::service::service_fn;
    loop {
        let (tcp, _) = tokio::select! {
            a = listener.accept() => match a {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = state.shutdown.cancelled() => return,
        };
        let state = state.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let state = state.clone();
                async move {
                    let (status, ctype, body) = if req.uri().path() != "/metrics" {
                        (
                            http::StatusCode::NOT_FOUND,
                            "text/plain",
                            "not found\n".into(),
                        )
                    } else if req.method() != http::Method::GET {
                        (
                            http::StatusCode::METHOD_NOT_ALLOWED,
                            "text/plain",
                            "GET only\n".into(),
                        )
                    } else {
                        (
                            http::StatusCode::OK,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            state.metrics.render(&state).await,
                        )
                    };
                    http::Response::builder()
                        .status(status)
                        .header(http::header::CONTENT_TYPE, ctype)
                        .body(http_body_util::Full::new(Bytes::from(body)))
                }
            });
            let io = hyper_util::rt::TokioIo::new(tcp);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "admin connection ended");
            }
        });
    }
}

/// Binds the admin address; says where it listens.
pub async fn bind_admin(addr: SocketAddr) -> Result<TcpListener> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(listen = %listener.local_addr()?, "serving metrics on /metrics");
    Ok(listener)
}

/// A tower layer for the gRPC router: a span per RPC (method, request id), the request id
/// echoed, and the RPC's count and duration by gRPC code once its response ends.
#[derive(Debug, Clone)]
pub struct RpcLayer(pub Arc<Metrics>);

impl<S> tower::Layer<S> for RpcLayer {
    type Service = RpcService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RpcService {
            inner,
            metrics: self.0.clone(),
        }
    }
}

/// See [`RpcLayer`].
#[derive(Debug, Clone)]
pub struct RpcService<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<http::Request<ReqBody>> for RpcService<S>
where
    S: tower::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<Timed<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<std::result::Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<std::result::Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let method = req.uri().path().to_owned();
        let id = request_id(req.headers());
        if let Ok(v) = http::HeaderValue::from_str(&id) {
            req.headers_mut().insert(REQUEST_ID, v);
        }
        let span = tracing::info_span!("rpc", method = %method, request_id = %id);
        let call = self.inner.call(req);
        let metrics = self.metrics.clone();
        Box::pin(
            async move {
                let mut res = call.await?;
                if let Ok(v) = http::HeaderValue::from_str(&id) {
                    res.headers_mut().insert(REQUEST_ID, v);
                }
                // A trailers-only answer (an error before any message) has its code here.
                let code = status_of(res.headers());
                Ok(res.map(|body| Timed {
                    body,
                    code,
                    done: Some((metrics, method, started)),
                }))
            }
            .instrument(span),
        )
    }
}

fn request_id(headers: &http::HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

fn status_of(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let v = headers.get("grpc-status")?.to_str().ok()?;
    Some(tonic::Code::from_i32(v.parse().ok()?))
}

/// A response body that records its RPC when it ends (or is dropped: a client that went
/// away counts as CANCELLED).
#[derive(Debug)]
pub struct Timed<B> {
    body: B,
    code: Option<tonic::Code>,
    done: Option<(Arc<Metrics>, String, Instant)>,
}

impl<B> Drop for Timed<B> {
    fn drop(&mut self) {
        if let Some((metrics, method, started)) = self.done.take() {
            let code = self.code.unwrap_or(tonic::Code::Cancelled);
            metrics.rpc(&method, code, started.elapsed());
        }
    }
}

impl<B> Body for Timed<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    this.code = Some(code);
                }
            }
            Poll::Ready(Some(Err(_))) => {
                this.code.get_or_insert(tonic::Code::Internal);
            }
            Poll::Ready(None) => {
                // Ended without trailers: gRPC says the call failed.
                this.code.get_or_insert(tonic::Code::Unknown);
                if let Some((m, method, started)) = this.done.take() {
                    let code = this.code.unwrap_or(tonic::Code::Unknown);
                    m.rpc(&method, code, started.elapsed());
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
