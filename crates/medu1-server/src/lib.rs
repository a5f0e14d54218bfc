//! medu1's reward server: Med-U1 rewards over HTTP for Ray-based trainers.
//!
//! When training outgrows one machine, OpenRLHF and verl run on Ray clusters; they call this server
//! (OpenRLHF's remote reward protocol on `POST /reward`, a native batch form on `POST /score`, and
//! `integrations/verl/medu1_reward.py` for verl) so that every worker gets the exact, fast Rust
//! reward instead of a Python port. The crate depends on reward (and through it core) only, so it
//! builds without candle.

mod app;
mod error;
mod handling;
mod metrics;
pub mod protocol;
mod route_reward;
mod route_score;
mod state;

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

/// Serves HTTP/1.1 until `shutdown` resolves, then finishes the requests in flight for at most
/// `shutdown_timeout`.
///
/// hyper is driven directly rather than through `axum::serve` for two limits that axum does not
/// expose: a header read timeout (a client that never finishes its headers is disconnected) and a
/// bounded graceful shutdown (`with_graceful_shutdown` waits for every open connection, forever
/// when a client holds a half-sent request).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use hyper_util::service::TowerToHyperService;

    let deadline = state.config.shutdown_timeout;
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(state.config.header_read_timeout);
    let app = router(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let conn =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown deadline of {deadline:?} passed with connections still open");
    }
    Ok(())
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
