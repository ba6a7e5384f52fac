//! The bodies the proxy moves: the client's request body, lent to one try at a
//! time so that a try that failed before sending any of it can give it back
//! for the next, and the upstream's response body, which keeps the upstream's
//! in-flight count until it ends and logs a mid-body failure.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::pool::InFlight;

/// The client's request body and whether a try has sent any of it.
struct Slot {
    body: Option<Incoming>,
    sent: bool,
}

/// The request body, shared between the handler and the try that has it.
pub(crate) struct Reclaim {
    slot: Arc<Mutex<Slot>>,
}

impl Reclaim {
    pub(crate) fn new(body: Incoming) -> Reclaim {
        Reclaim::of(Some(body))
    }

    /// No body (health checks).
    pub(crate) fn empty() -> Reclaim {
        Reclaim::of(None)
    }

    fn of(body: Option<Incoming>) -> Reclaim {
        Reclaim {
            slot: Arc::new(Mutex::new(Slot { body, sent: false })),
        }
    }

    /// The body for one try.
    pub(crate) fn outbound(&self) -> Outbound {
        Outbound {
            slot: self.slot.clone(),
        }
    }

    /// True while no frame of the body has been sent: another try may send it.
    pub(crate) fn reclaimable(&self) -> bool {
        !lock(&self.slot).sent
    }
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // A panic while the lock is held leaves a consistent `Slot` (two plain
    // fields), so a poisoned lock is used as is.
    slot.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The request body as one try sends it.
pub(crate) struct Outbound {
    slot: Arc<Mutex<Slot>>,
}

impl Body for Outbound {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let mut slot = lock(&self.slot);
        let Some(body) = slot.body.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        if matches!(polled, Poll::Ready(Some(_))) {
            slot.sent = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.slot)
            .body
            .as_ref()
            .is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.slot)
            .body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// An upstream's response body on its way to the client.
pub struct ResponseBody {
    inner: Incoming,
    /// Counts the request as in flight on its upstream until the body ends
    /// (an upgraded connection's tunnel counts it instead).
    _in_flight: Option<InFlight>,
    upstream: String,
}

impl ResponseBody {
    pub(crate) fn new(inner: Incoming, in_flight: Option<InFlight>, upstream: String) -> Self {
        ResponseBody {
            inner,
            _in_flight: in_flight,
            upstream,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                // The status line is gone already: the client's connection is
                // cut (hyper closes it on a body error), so it sees a short body.
                tracing::warn!(
                    target: "gojinn::proxy",
                    upstream = %this.upstream,
                    error = %crate::error_chain(&e),
                    "upstream response body failed mid-way; the client's response is cut short"
                );
                Poll::Ready(Some(Err(std::io::Error::other(e))))
            }
            other => other.map_err(std::io::Error::other),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
