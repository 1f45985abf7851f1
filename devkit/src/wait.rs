//! Bounded waits: poll a condition until it holds or a deadline passes, and name what was
//! awaited when it did not, so a stuck test says what it was waiting for rather than hanging.

use std::future::Future;
use std::time::{Duration, Instant};

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(100);

/// A wait that ran out of time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timed out after {after:?} waiting for {what}")]
pub struct WaitTimeout {
    pub what: String,
    pub after: Duration,
}

/// Polls `f` every 100 ms until it returns `Some`, for at most `timeout`. The condition is
/// checked once more at the deadline, so a condition that holds by then is never reported late.
pub async fn wait_until<T, F, Fut>(
    timeout: Duration,
    what: &str,
    mut f: F,
) -> Result<T, WaitTimeout>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Ok(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitTimeout {
                what: what.to_string(),
                after: timeout,
            });
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
}

/// [`wait_until`] for code without a runtime (a test thread watching a child process).
pub fn wait_until_blocking<T>(
    timeout: Duration,
    what: &str,
    mut f: impl FnMut() -> Option<T>,
) -> Result<T, WaitTimeout> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitTimeout {
                what: what.to_string(),
                after: timeout,
            });
        }
        std::thread::sleep(POLL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_value_once_the_condition_holds() {
        let mut calls = 0;
        let v = wait_until(Duration::from_secs(5), "the third call", || {
            calls += 1;
            let n = calls;
            async move { (n == 3).then_some(n) }
        })
        .await;
        assert_eq!(v, Ok(3));
    }

    #[tokio::test]
    async fn names_what_it_waited_for_on_timeout() {
        let started = Instant::now();
        let e = wait_until(
            Duration::from_millis(250),
            "a block that never comes",
            || async { None::<()> },
        )
        .await
        .unwrap_err();
        assert!(started.elapsed() >= Duration::from_millis(250));
        assert!(started.elapsed() < Duration::from_secs(2));
        assert_eq!(
            e.to_string(),
            "timed out after 250ms waiting for a block that never comes"
        );
    }

    #[test]
    fn blocking_variant_checks_at_the_deadline() {
        let started = Instant::now();
        let v = wait_until_blocking(Duration::from_millis(150), "the deadline", || {
            (started.elapsed() >= Duration::from_millis(150)).then_some(())
        });
        assert_eq!(v, Ok(()));
    }
}
