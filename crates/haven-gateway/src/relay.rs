//! Moving bytes for a visit: response and request bodies counted as they stream (and cut
//! when the visit ends), and a WebSocket's two upgraded connections relayed both ways.

use std::{
    pin::Pin,
    sync::{Arc, atomic::Ordering},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use futures::future::Either;
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    proxy::{Body, BoxError},
    tracker::Visit,
};

/// How long the other direction of a WebSocket may go on once one direction has ended (the
/// closing handshake's answer).
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Which way bytes go.
#[derive(Debug, Clone, Copy)]
pub enum Way {
    In,
    Out,
}

/// A body that counts its bytes into a visit.
struct Counted<B> {
    inner: B,
    visit: Arc<Visit>,
    way: Way,
}

impl<B> HttpBody for Counted<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // A visit ended (access removed): a download or upload in progress stops too.
        if self.visit.closed.is_cancelled() {
            return Poll::Ready(Some(Err("the visit ended: access removed".into())));
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            count(&self.visit, self.way, data.len());
            self.visit.touch();
        }
        polled.map(|frame| frame.map(|f| f.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn count(visit: &Visit, way: Way, bytes: usize) {
    let counter = match way {
        Way::In => &visit.bytes_in,
        Way::Out => &visit.bytes_out,
    };
    counter.fetch_add(bytes as u64, Ordering::Relaxed);
}

pub fn counted(body: Incoming, visit: &Arc<Visit>, way: Way) -> Body {
    Counted { inner: body, visit: Arc::clone(visit), way }.boxed()
}

/// Copies both ways until one side closes (then the other has a moment to answer the closing
/// handshake) or the visit ends; returns why it stopped. Both connections drop on return.
pub async fn relay<A, B>(browser: A, environment: B, visit: &Arc<Visit>) -> String
where
    A: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send,
{
    let (mut browser_read, mut browser_write) = tokio::io::split(browser);
    let (mut env_read, mut env_write) = tokio::io::split(environment);
    type Direction<'a> = Pin<Box<dyn Future<Output = std::io::Result<()>> + Send + 'a>>;
    let inbound: Direction<'_> = Box::pin(pump(&mut browser_read, &mut env_write, visit, Way::In));
    let outbound: Direction<'_> = Box::pin(pump(&mut env_read, &mut browser_write, visit, Way::Out));
    let (first, rest) = tokio::select! {
        () = visit.closed.cancelled() => return "access removed".into(),
        either = futures::future::select(inbound, outbound) => match either {
            Either::Left((_, rest)) => ("closed by the browser", rest),
            Either::Right((_, rest)) => ("closed by the environment", rest),
        },
    };
    tokio::select! {
        () = visit.closed.cancelled() => "access removed".into(),
        _ = tokio::time::timeout(CLOSE_GRACE, rest) => first.into(),
    }
}

async fn pump<R, W>(from: &mut R, to: &mut W, visit: &Arc<Visit>, way: Way) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    let mut buffer = vec![0u8; 8 * 1024];
    loop {
        let read = from.read(&mut buffer).await?;
        if read == 0 {
            return to.shutdown().await;
        }
        to.write_all(&buffer[..read]).await?;
        count(visit, way, read);
        visit.touch();
    }
}
