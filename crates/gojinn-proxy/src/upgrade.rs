//! `Upgrade` requests (WebSocket and others): once the upstream answered
//! `101 Switching Protocols` and the client got it, the two upgraded
//! connections are joined and bytes are copied both ways until either side
//! closes.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use crate::pool::InFlight;

/// Joins the client's and the upstream's upgraded connections; the request
/// counts as in flight on its upstream until the tunnel closes.
pub(crate) async fn tunnel(
    client: OnUpgrade,
    upstream: OnUpgrade,
    _in_flight: InFlight,
    dial: String,
) {
    let (client, upstream) = match tokio::try_join!(client, upstream) {
        Ok(both) => both,
        Err(e) => {
            tracing::warn!(target: "gojinn::proxy", upstream = %dial, error = %crate::error_chain(&e), "protocol switch failed; connection closed");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut upstream = TokioIo::new(upstream);
    match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
        Ok((up, down)) => {
            tracing::debug!(target: "gojinn::proxy", upstream = %dial, bytes_up = up, bytes_down = down, "upgraded connection closed");
        }
        Err(e) => {
            tracing::debug!(target: "gojinn::proxy", upstream = %dial, error = %e, "upgraded connection ended with an error");
        }
    }
}
