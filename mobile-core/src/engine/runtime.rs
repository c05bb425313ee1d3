//! The one tokio runtime of the core, and how exported async calls run on it.

use std::sync::OnceLock;
use std::time::SystemTime;

use tokio::runtime::Runtime;

use crate::error::{CoreError, CoreResult, TaplineError};
use crate::model::millis;

/// The runtime every background task and exported async call runs on.
pub(crate) fn runtime() -> &'static Runtime {
    static RT: OnceLock<Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tapline-core")
            .enable_all()
            .build()
            .expect("tokio runtime for tapline-core")
    })
}

/// Runs `fut` to completion on the core's runtime, even if the caller stops waiting (Kotlin
/// cancels by dropping, Swift never cancels): a send or a store write is never cut in half.
pub(crate) async fn run<T: Send + 'static>(
    fut: impl std::future::Future<Output = CoreResult<T>> + Send + 'static,
) -> Result<T, TaplineError> {
    match runtime().spawn(fut).await {
        Ok(r) => r.map_err(Into::into),
        Err(e) => Err(CoreError::Join(e).into()),
    }
}

/// Milliseconds since the Unix epoch, now.
pub(crate) fn now_ms() -> i64 {
    millis(SystemTime::now())
}
