//! The learned `eth_getLogs` window of one chain: how many blocks one query may span through
//! this chain's provider(s), shrunk when a provider refuses a query as too wide or too large,
//! re-grown after successes, and shared by every reader of the chain (watcher, recovery,
//! auditor), so what one learns the others do not pay for again.
//!
//! ```text
//!  window ──query──► ok ──► successes += 1 ──(GROW_AFTER in a row)──► window × 2 (≤ ceiling)
//!     ▲              capped ─► window = provider's stated limit / suggested range / window ÷ 2
//!     └──────────────────────── ceiling = a block-range limit the provider stated
//! ```
//!
//! A block-range cap ("limited to a 100 range") is a property of the provider: once stated, the
//! window never grows past it. A result-count cap ("more than 10000 results") depends on how
//! dense the logs are, so the window grows back once queries pass again.

use std::sync::Mutex;

/// Successful full-width queries in a row before the window doubles. With a provider that caps
/// without saying where, one query in `GROW_AFTER + 1` probes a wider window and is refused.
pub(crate) const GROW_AFTER: u32 = 8;

#[derive(Debug)]
pub(crate) struct LogWindow {
    max: u64,
    state: Mutex<State>,
}

#[derive(Debug, Clone, Copy)]
struct State {
    current: u64,
    /// A block-range limit the provider stated: the window never grows past it.
    ceiling: Option<u64>,
    successes: u32,
    caps: u64,
    overflows: u64,
}

/// What a refusal said about the range that would pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CapHint {
    /// Most blocks per query, as the provider stated it ("limited to a 100 range", "up to a 2K
    /// block range", "maximum block range: 5000").
    pub range_limit: Option<u64>,
    /// A range the provider suggested (`[from, to]` in the text, or `data.from`/`data.to`).
    pub suggested: Option<(u64, u64)>,
}

/// Counters of the window, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogWindowStats {
    /// Blocks the next query spans at most.
    pub window: u64,
    /// Queries refused as too wide or too large (each retried narrower).
    pub caps: u64,
    /// Single blocks whose logs alone exceeded the provider's result cap.
    pub overflows: u64,
}

impl LogWindow {
    pub(crate) fn new(max: u64) -> Self {
        let max = max.max(1);
        LogWindow {
            max,
            state: Mutex::new(State {
                current: max,
                ceiling: None,
                successes: 0,
                caps: 0,
                overflows: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a few integers, consistent after every statement: a panic elsewhere
        // while holding the lock leaves nothing half-written.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn current(&self) -> u64 {
        self.lock().current
    }

    pub(crate) fn stats(&self) -> LogWindowStats {
        let s = self.lock();
        LogWindowStats {
            window: s.current,
            caps: s.caps,
            overflows: s.overflows,
        }
    }

    /// A query spanning `span` blocks passed. Only full-width queries count towards growing: a
    /// short query at the end of a range says nothing about the window.
    pub(crate) fn passed(&self, span: u64) {
        let mut s = self.lock();
        if span < s.current {
            return;
        }
        s.successes += 1;
        let limit = s.ceiling.unwrap_or(self.max).min(self.max);
        if s.successes >= GROW_AFTER && s.current < limit {
            s.current = s.current.saturating_mul(2).min(limit);
            s.successes = 0;
        }
    }

    /// A query of `span` blocks starting at `from` was refused; returns the window to try next,
    /// always narrower than `span` (when `span > 1`).
    pub(crate) fn capped(&self, from: u64, span: u64, hint: CapHint) -> u64 {
        let mut s = self.lock();
        s.caps += 1;
        s.successes = 0;
        let mut next = span / 2;
        let suggested = hint
            .suggested
            .filter(|&(a, b)| a == from && b >= a && b - a + 1 < span)
            .map(|(a, b)| b - a + 1);
        match (hint.range_limit.filter(|&l| l >= 1), suggested) {
            // A stated block-range limit below what we asked: the provider's ceiling.
            (Some(limit), _) if limit < span => {
                s.ceiling = Some(limit);
                next = limit;
            }
            (_, Some(n)) => next = n,
            // Refused at exactly the stated width: the provider counts the range the other way
            // (inclusive vs exclusive), so one block less is its ceiling.
            (Some(limit), None) if limit == span => {
                s.ceiling = Some(span - 1);
                next = span - 1;
            }
            // A stated limit above what we asked (Alchemy's "up to a 2K block range" when the
            // result count was the problem) says nothing here: halve.
            _ => {}
        }
        s.current = next.clamp(1, span.saturating_sub(1).max(1));
        s.current
    }

    /// A one-block query was refused: counted for the metric.
    pub(crate) fn overflowed(&self) {
        self.lock().overflows += 1;
    }
}

/// What a refusal's text and data say about a range that would pass.
pub(crate) fn cap_hint(message: &str, data: Option<&str>) -> CapHint {
    CapHint {
        range_limit: stated_limit(message),
        suggested: suggested_in_text(message).or_else(|| data.and_then(suggested_in_data)),
    }
}

/// "limited to a 100 range", "up to a 2K block range", "maximum block range: 5000",
/// "max range: 3500".
fn stated_limit(message: &str) -> Option<u64> {
    let m = message.to_ascii_lowercase();
    [
        "limited to a ",
        "up to a ",
        "maximum block range: ",
        "max range: ",
    ]
    .iter()
    .find_map(|prefix| {
        let at = m.find(prefix)? + prefix.len();
        number_with_suffix(&m[at..])
    })
}

/// A decimal number at the start of `s`, with an optional `k` (thousand) right after it.
fn number_with_suffix(s: &str) -> Option<u64> {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    let n: u64 = digits.parse().ok()?;
    match s[digits.len()..].chars().next() {
        Some('k') => n.checked_mul(1000),
        _ => Some(n),
    }
}

/// `[0x10, 0x7f]` in the text (Alchemy, Infura).
fn suggested_in_text(message: &str) -> Option<(u64, u64)> {
    let open = message.rfind('[')?;
    let close = open + message[open..].find(']')?;
    let (a, b) = message[open + 1..close].split_once(',')?;
    Some((hex_or_dec(a.trim())?, hex_or_dec(b.trim())?))
}

/// `{"from": "0x10", "to": "0x7f"}` in the error's `data` (Infura).
fn suggested_in_data(data: &str) -> Option<(u64, u64)> {
    let v: serde_json::Value = serde_json::from_str(data).ok()?;
    let field = |k: &str| v.get(k)?.as_str().and_then(hex_or_dec);
    Some((field("from")?, field("to")?))
}

fn hex_or_dec(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hints_of_the_common_providers() {
        let cases: &[(&str, Option<&str>, CapHint)] = &[
            (
                "eth_getLogs is limited to a 10000 range",
                None,
                CapHint {
                    range_limit: Some(10000),
                    suggested: None,
                },
            ),
            (
                "Log response size exceeded. You can make eth_getLogs requests with up to a 2K \
                 block range and no limit on the response size, or you can request any block \
                 range with a cap of 10K logs in the response. Based on your parameters, this \
                 block range should work: [0x1e8480, 0x1e84e3]",
                None,
                CapHint {
                    range_limit: Some(2000),
                    suggested: Some((0x1e8480, 0x1e84e3)),
                },
            ),
            (
                "query returned more than 10000 results",
                Some(r#"{"from":"0x64","to":"0x95"}"#),
                CapHint {
                    range_limit: None,
                    suggested: Some((100, 149)),
                },
            ),
            (
                "query returned more than 10000 results. Try with this block range [0x64, 0x95].",
                None,
                CapHint {
                    range_limit: None,
                    suggested: Some((100, 149)),
                },
            ),
            (
                "exceed maximum block range: 5000",
                None,
                CapHint {
                    range_limit: Some(5000),
                    suggested: None,
                },
            ),
            ("block range is too wide", None, CapHint::default()),
            (
                "query returned more than 10000 results",
                Some("garbage"),
                CapHint::default(),
            ),
        ];
        for (message, data, want) in cases {
            assert_eq!(cap_hint(message, *data), *want, "{message}");
        }
    }

    #[test]
    fn halves_without_a_hint_and_grows_back_after_successes() {
        let w = LogWindow::new(1000);
        assert_eq!(w.capped(0, 1000, CapHint::default()), 500);
        assert_eq!(w.capped(0, 500, CapHint::default()), 250);
        for _ in 0..GROW_AFTER - 1 {
            w.passed(250);
        }
        assert_eq!(w.current(), 250);
        // A short query at a range's end does not count.
        w.passed(10);
        assert_eq!(w.current(), 250);
        w.passed(250);
        assert_eq!(w.current(), 500);
        for _ in 0..GROW_AFTER * 4 {
            let span = w.current();
            w.passed(span);
        }
        assert_eq!(w.current(), 1000, "never past the configured max");
        assert_eq!(w.stats().caps, 2);
    }

    #[test]
    fn a_stated_range_limit_is_a_ceiling() {
        let w = LogWindow::new(1000);
        let hint = cap_hint("eth_getLogs is limited to a 100 range", None);
        assert_eq!(w.capped(0, 1000, hint), 100);
        for _ in 0..GROW_AFTER * 4 {
            w.passed(100);
        }
        assert_eq!(w.current(), 100);
        // Refused at exactly the stated width: read as exclusive.
        assert_eq!(w.capped(0, 100, hint), 99);
        for _ in 0..GROW_AFTER * 4 {
            w.passed(99);
        }
        assert_eq!(w.current(), 99);
    }

    #[test]
    fn a_stated_limit_above_the_query_defers_to_the_suggestion() {
        let message = "Log response size exceeded. You can make eth_getLogs requests with up to a \
                       2K block range and no limit on the response size, or you can request any \
                       block range with a cap of 10K logs in the response. Based on your \
                       parameters, this block range should work: [0x64, 0x95]";
        let w = LogWindow::new(1000);
        assert_eq!(w.capped(100, 1000, cap_hint(message, None)), 50);
        // No ceiling was learned: the window grows back to the max.
        for _ in 0..GROW_AFTER * 8 {
            let span = w.current();
            w.passed(span);
        }
        assert_eq!(w.current(), 1000);
    }

    #[test]
    fn a_suggested_range_from_the_query_start_is_used() {
        let w = LogWindow::new(1000);
        let hint = CapHint {
            range_limit: None,
            suggested: Some((5000, 5041)),
        };
        assert_eq!(w.capped(5000, 1000, hint), 42);
        // A suggestion for another start, or no narrower than asked, is ignored.
        let w = LogWindow::new(1000);
        let other = CapHint {
            range_limit: None,
            suggested: Some((1, 10)),
        };
        assert_eq!(w.capped(5000, 1000, other), 500);
        let wider = CapHint {
            range_limit: None,
            suggested: Some((5000, 9000)),
        };
        assert_eq!(w.capped(5000, 500, wider), 250);
    }

    #[test]
    fn the_next_window_is_always_narrower() {
        for span in [2u64, 3, 7, 100, 1000] {
            for limit in [1u64, span - 1, span, span + 1, 10_000] {
                let w = LogWindow::new(1000);
                let hint = CapHint {
                    range_limit: Some(limit),
                    suggested: None,
                };
                let next = w.capped(0, span, hint);
                assert!(
                    (1..span).contains(&next),
                    "span {span} limit {limit}: {next}"
                );
            }
        }
    }
}
