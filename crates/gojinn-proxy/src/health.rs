//! Active health checks: one task per upstream requests `health_uri` every
//! `health_interval` (the first at once) and marks the upstream healthy or
//! not by the answer, as Caddy does (one failed check takes it out, one
//! passing check brings it back). The tasks hold the handler weakly and end
//! once it is dropped, at the next reload.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::time::Duration;

use gojinn_config::proxy::status_covers;
use http::{Request, Uri};
use http_body_util::BodyExt;

use crate::body::Reclaim;
use crate::pool::Host;
use crate::Inner;

/// At most this much of a health check's response body is read (then the
/// connection is dropped rather than kept for reuse).
const MAX_HEALTH_BODY: usize = 64 << 10;

pub(crate) fn start(inner: &Arc<Inner>) {
    let Some(cfg) = &inner.config.active_health else {
        return;
    };
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let every = Duration::from_millis(cfg.interval_ms);
    for host in &inner.pool.hosts {
        let weak = Arc::downgrade(inner);
        let host = host.clone();
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if !check_once(&weak, &host).await {
                    return;
                }
            }
        });
    }
}

/// One check of `host`; false when the handler is gone.
async fn check_once(weak: &Weak<Inner>, host: &Arc<Host>) -> bool {
    let Some(inner) = weak.upgrade() else {
        return false;
    };
    let Some(cfg) = &inner.config.active_health else {
        return false;
    };
    let target = match cfg.port {
        Some(port) => {
            let h = host
                .dial
                .rsplit_once(':')
                .map_or(host.dial.as_str(), |(h, _)| h);
            format!("{h}:{port}")
        }
        None => host.dial.clone(),
    };
    let verdict = match Uri::try_from(format!("{}://{target}{}", inner.scheme, cfg.uri)) {
        Err(e) => Err(format!("bad health check URI: {e}")),
        Ok(uri) => {
            let mut req = Request::new(Reclaim::empty().outbound());
            *req.uri_mut() = uri;
            let timeout = Duration::from_millis(cfg.timeout_ms);
            let round_trip = async {
                let resp = inner
                    .client
                    .request(req)
                    .await
                    .map_err(|e| crate::error_chain(&e))?;
                let status = resp.status();
                // Read (a bounded part of) the body so the connection can be reused.
                let _ = http_body_util::Limited::new(resp.into_body(), MAX_HEALTH_BODY)
                    .collect()
                    .await;
                let wanted = cfg.status.unwrap_or(2);
                if status_covers(wanted, status.as_u16()) {
                    Ok(())
                } else {
                    Err(format!("status {}", status.as_u16()))
                }
            };
            match tokio::time::timeout(timeout, round_trip).await {
                Ok(r) => r,
                Err(_) => Err(format!("no answer within {} ms", cfg.timeout_ms)),
            }
        }
    };
    let was = host.healthy.swap(verdict.is_ok(), Relaxed);
    match verdict {
        Ok(()) if !was => {
            tracing::info!(target: "gojinn::proxy", upstream = %host.dial, "upstream healthy again: active health check passed");
        }
        Err(why) if was => {
            tracing::warn!(target: "gojinn::proxy", upstream = %host.dial, reason = %why, "upstream unhealthy: active health check failed");
        }
        _ => {}
    }
    true
}
