//! Waking idle workers: every push is announced on a Redis channel, and
//! each consumer's fetch stream ([`WakeStream`]) yields on an announcement
//! (and once more shortly after), or on its fallback interval when an
//! announcement was lost.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::task::AtomicWaker;
use futures::{Stream, StreamExt};
use tokio::task::JoinHandle;

use crate::JobQueue;

impl JobQueue {
    /// The channel pushes are announced on.
    pub(crate) fn wake_channel(&self) -> String {
        format!("{}:ordersum:wake", self.name)
    }

    /// Wake-ups for a consumer of this queue: a subscription to the
    /// announcements of pushes, kept open (and opened again after Redis
    /// comes back) by a task that lives as long as the [`Wakeups`].
    pub fn wakeups(&self) -> Wakeups {
        let signal = Arc::new(Signal::default());
        let task = tokio::spawn(subscribe(
            self.client.clone(),
            self.wake_channel(),
            signal.clone(),
        ));
        Wakeups { signal, task }
    }
}

/// A consumer's subscription to push announcements (see
/// [`JobQueue::wakeups`]); dropping it ends the subscription.
#[derive(Debug)]
pub struct Wakeups {
    signal: Arc<Signal>,
    task: JoinHandle<()>,
}

/// A raised flag and the waker to call: an announcement raised while
/// nobody waits is kept for the next poll.
#[derive(Debug, Default)]
struct Signal {
    raised: AtomicBool,
    waker: AtomicWaker,
}

impl Signal {
    fn raise(&self) {
        self.raised.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// After a wake-up, the consumer fetches once more this much later: a
/// fetch already in flight when the announcement came may have run in
/// Redis before the push it announces.
const ECHO: Duration = Duration::from_millis(20);

/// Yields when a push is announced (and once more [`ECHO`] later), and
/// every fallback interval. apalis' `PollWith` polls it once per fetch and
/// does not poll it again after it yields, so every poll leaves the task's
/// waker registered with each source, whether it yields or not.
pub struct WakeStream {
    signal: Arc<Signal>,
    fallback: tokio::time::Interval,
    echo: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl std::fmt::Debug for WakeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WakeStream").finish_non_exhaustive()
    }
}

impl Stream for WakeStream {
    type Item = ();

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<()>> {
        let this = self.get_mut();
        this.signal.waker.register(cx.waker());
        let announced = this.signal.raised.swap(false, Ordering::AcqRel);
        // A tick that fired re-arms the interval: poll it again so the
        // next tick is registered too.
        let ticked = this.fallback.poll_tick(cx).is_ready();
        if ticked {
            let _ = this.fallback.poll_tick(cx);
        }
        let echoed = this
            .echo
            .as_mut()
            .is_some_and(|echo| echo.as_mut().poll(cx).is_ready());
        if echoed {
            this.echo = None;
        }
        if announced {
            let mut echo = Box::pin(tokio::time::sleep(ECHO));
            let _ = echo.as_mut().poll(cx);
            this.echo = Some(echo);
        }
        if announced || ticked || echoed {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }
}

impl Wakeups {
    /// The wake-up stream an apalis consumer polls by.
    pub fn stream(&self, fallback: Duration) -> WakeStream {
        let mut fallback =
            tokio::time::interval_at(tokio::time::Instant::now() + fallback, fallback);
        fallback.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        WakeStream {
            signal: self.signal.clone(),
            fallback,
            echo: None,
        }
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Keeps a subscription to `channel` open, turning each message into a
/// wake-up. After a lost connection it wakes the consumer once (pushes may
/// have been announced meanwhile) and subscribes again.
async fn subscribe(client: redis::Client, channel: String, signal: Arc<Signal>) {
    let mut retry = Duration::from_millis(100);
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    retry = Duration::from_millis(100);
                    signal.raise();
                    let mut messages = pubsub.into_on_message();
                    while messages.next().await.is_some() {
                        signal.raise();
                    }
                    tracing::warn!(
                        "lost the Redis subscription to push announcements; subscribing again"
                    );
                }
                Err(err) => {
                    tracing::warn!(error = %err, "could not subscribe to push announcements")
                }
            },
            Err(err) => {
                tracing::debug!(error = %err, "could not connect to Redis for push announcements")
            }
        }
        tokio::time::sleep(retry).await;
        retry = (retry * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    /// Counts how often the task would have been woken.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn stream(signal: &Arc<Signal>) -> WakeStream {
        WakeStream {
            signal: signal.clone(),
            fallback: tokio::time::interval_at(
                tokio::time::Instant::now() + Duration::from_secs(3600),
                Duration::from_secs(3600),
            ),
            echo: None,
        }
    }

    #[tokio::test]
    async fn an_announcement_after_the_stream_yielded_still_wakes_the_task() {
        let signal = Arc::new(Signal::default());
        let mut wake = stream(&signal);
        let counter = Arc::new(CountingWaker::default());
        let waker = std::task::Waker::from(counter.clone());
        let mut cx = Context::from_waker(&waker);

        // Raised before anyone waits: kept for the first poll.
        signal.raise();
        assert_eq!(
            Pin::new(&mut wake).poll_next(&mut cx),
            Poll::Ready(Some(()))
        );
        // apalis does not poll again after a yield; the next announcement
        // must reach the task all the same.
        let before = counter.0.load(Ordering::SeqCst);
        signal.raise();
        assert!(counter.0.load(Ordering::SeqCst) > before);
        assert_eq!(
            Pin::new(&mut wake).poll_next(&mut cx),
            Poll::Ready(Some(()))
        );
    }

    #[tokio::test]
    async fn a_wake_up_is_echoed_once_for_a_fetch_that_was_in_flight() {
        let signal = Arc::new(Signal::default());
        let mut wake = stream(&signal);
        signal.raise();
        assert_eq!(wake.next().await, Some(()));
        // The echo, then nothing more until the next announcement.
        tokio::time::timeout(Duration::from_secs(1), wake.next())
            .await
            .expect("the echo comes");
        assert!(
            tokio::time::timeout(Duration::from_millis(200), wake.next())
                .await
                .is_err()
        );
    }
}
