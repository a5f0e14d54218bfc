//! medu1's reward server: Med-U1 rewards over HTTP for Ray-based trainers.
//!
//! When training outgrows one machine, OpenRLHF and verl run on Ray clusters; they call this server
//! (OpenRLHF's remote reward protocol on `POST /reward`, a native batch form on `POST /score`, and
//! `integrations/verl/medu1_reward.py` for verl) so that every worker gets the exact, fast Rust
//! reward instead of a Python port. The crate depends on core + reward only, so it builds without
//! candle.

mod app;
mod error;
mod metrics;
pub mod protocol;

use std::net::SocketAddr;
use std::sync::Arc;

pub use app::{AppState, ServerConfig, TokenCounter, router};
pub use error::ApiError;
pub use metrics::Metrics;

/// Builds the shared state.
pub fn state(config: ServerConfig, counter: Option<Arc<dyn TokenCounter>>) -> Arc<AppState> {
    Arc::new(AppState {
        config,
        counter,
        metrics: Metrics::new(),
    })
}

/// Serves until `shutdown` resolves, then finishes the requests in flight.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Binds `addr` (a helper for the CLI and tests).
pub async fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await
}
