//! A sender that streams traces while a test does something else to the
//! server: trace `n` (each breaking the marker rule) goes in a request of its
//! own, in order, until the stream is stopped. Every request must be taken.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

use super::traces::{TraceShape, send, trace_id};

/// A running stream of traces.
#[derive(Debug)]
pub struct TraceStream {
    test: u8,
    /// The number of the trace being sent, or next to be sent.
    next: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl TraceStream {
    /// Streams the traces of test `test`, one every `pause`.
    pub fn start(mut client: TraceServiceClient<Channel>, test: u8, pause: Duration) -> TraceStream {
        let next = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn({
            let (next, stop) = (next.clone(), stop.clone());
            async move {
                while !stop.load(Ordering::SeqCst) {
                    let n = next.load(Ordering::SeqCst);
                    send(&mut client, &[TraceShape::small(trace_id(test, n), true)]).await;
                    next.store(n + 1, Ordering::SeqCst);
                    tokio::time::sleep(pause).await;
                }
            }
        });
        TraceStream { test, next, stop, task }
    }

    /// The first trace sure to be sent after this call: traces numbered
    /// from here on reach the server after whatever the caller saw.
    pub fn first_sent_after_now(&self) -> u64 {
        self.next.load(Ordering::SeqCst) + 1
    }

    /// Stops the stream; returns the ids of every trace it sent, in order.
    pub async fn stop(self) -> Vec<[u8; 16]> {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.expect("the stream sent every trace");
        (0..self.next.load(Ordering::SeqCst)).map(|n| trace_id(self.test, n)).collect()
    }
}
