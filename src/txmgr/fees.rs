//! Fees per [`FeePolicy`]: the first offer, and the bumped offer of a replacement.
//!
//! EIP-1559: `max_fee = min(2 × base fee + priority, cap)`, `priority = min(policy priority,
//! max_fee)`. Legacy: the policy's gas price, or `eth_gasPrice`, capped. A replacement raises
//! every fee field by `bump_percent` (at least the 10 % nodes demand); when the cap leaves no
//! room for that, there is no replacement and the tracker re-sends the same transaction.

use crate::chain::{ChainClient, ChainError};
use crate::config::{FeeMode, FeePolicy};

/// Smallest raise, in percent, that nodes accept for a replacement.
const MIN_BUMP_PERCENT: u128 = 10;

/// The fee fields of one transaction, in wei per gas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fees {
    Eip1559 { max_fee: u128, priority: u128 },
    Legacy { gas_price: u128 },
}

impl Fees {
    /// The first offer for a new transaction.
    pub(crate) async fn initial(
        policy: &FeePolicy,
        client: &ChainClient,
    ) -> Result<Self, ChainError> {
        match policy.mode {
            FeeMode::Eip1559 => {
                let base = match client.base_fee().await? {
                    Some(base) => u128::from(base),
                    // A chain without a base fee: take its gas price as the base.
                    None => client.gas_price().await?,
                };
                Ok(Self::eip1559_from_base(policy, base))
            }
            FeeMode::Legacy => {
                let price = match policy.gas_price {
                    Some(p) => p,
                    None => client.gas_price().await?,
                };
                Ok(Fees::Legacy {
                    gas_price: price.min(policy.max_fee_per_gas),
                })
            }
        }
    }

    fn eip1559_from_base(policy: &FeePolicy, base: u128) -> Self {
        let max_fee = base
            .saturating_mul(2)
            .saturating_add(policy.priority_fee_per_gas)
            .min(policy.max_fee_per_gas);
        Fees::Eip1559 {
            max_fee,
            priority: policy.priority_fee_per_gas.min(max_fee),
        }
    }

    /// The offer of a replacement, or `None` when the cap leaves no room for a raise a node
    /// would accept (every field ≥ 10 % higher).
    pub(crate) fn bumped(&self, policy: &FeePolicy) -> Option<Self> {
        let enough = |old: u128, new: u128| {
            new >= old
                .saturating_mul(100 + MIN_BUMP_PERCENT)
                .div_ceil(100)
                .max(old + 1)
        };
        match *self {
            Fees::Eip1559 { max_fee, priority } => {
                let new_max = policy.bumped(max_fee);
                let new_priority = policy.bumped(priority).min(new_max);
                (enough(max_fee, new_max) && enough(priority, new_priority)).then_some(
                    Fees::Eip1559 {
                        max_fee: new_max,
                        priority: new_priority,
                    },
                )
            }
            Fees::Legacy { gas_price } => {
                let new = policy.bumped(gas_price);
                enough(gas_price, new).then_some(Fees::Legacy { gas_price: new })
            }
        }
    }

    /// The most this transaction pays per gas.
    pub fn max_per_gas(&self) -> u128 {
        match *self {
            Fees::Eip1559 { max_fee, .. } => max_fee,
            Fees::Legacy { gas_price } => gas_price,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::GWEI;
    use std::time::Duration;

    fn policy(mode: FeeMode, cap_gwei: u128) -> FeePolicy {
        FeePolicy {
            mode,
            max_fee_per_gas: cap_gwei * GWEI,
            priority_fee_per_gas: 2 * GWEI,
            gas_price: Some(10 * GWEI),
            bump_after: Duration::from_secs(30),
            bump_percent: 25,
            max_bumps: 3,
        }
    }

    #[test]
    fn eip1559_offer_is_twice_base_plus_priority_capped() {
        let p = policy(FeeMode::Eip1559, 100);
        for (base, max_fee, priority) in [
            (GWEI, 4 * GWEI, 2 * GWEI),
            (10 * GWEI, 22 * GWEI, 2 * GWEI),
            (60 * GWEI, 100 * GWEI, 2 * GWEI),
        ] {
            assert_eq!(
                Fees::eip1559_from_base(&p, base),
                Fees::Eip1559 { max_fee, priority },
                "base {base}"
            );
        }
        let tiny_cap = policy(FeeMode::Eip1559, 1);
        assert_eq!(
            Fees::eip1559_from_base(&tiny_cap, 5 * GWEI),
            Fees::Eip1559 {
                max_fee: GWEI,
                priority: GWEI
            }
        );
    }

    #[test]
    fn bumps_raise_every_field_and_stop_at_the_cap() {
        let p = policy(FeeMode::Eip1559, 10);
        let first = Fees::Eip1559 {
            max_fee: 4 * GWEI,
            priority: 2 * GWEI,
        };
        let second = first.bumped(&p).expect("room for a bump");
        assert_eq!(
            second,
            Fees::Eip1559 {
                max_fee: 5 * GWEI,
                priority: 5 * GWEI / 2
            }
        );
        let mut fees = second;
        let mut bumps = 1;
        while let Some(next) = fees.bumped(&p) {
            assert!(next.max_per_gas() <= 10 * GWEI);
            fees = next;
            bumps += 1;
        }
        assert!(bumps < 10, "bumping stops at the cap");
        assert_eq!(fees.bumped(&p), None);

        let legacy = policy(FeeMode::Legacy, 12);
        let l = Fees::Legacy {
            gas_price: 10 * GWEI,
        };
        let capped = Fees::Legacy {
            gas_price: 12 * GWEI,
        };
        assert_eq!(
            l.bumped(&legacy),
            Some(capped),
            "20 % up to the cap is a valid bump"
        );
        assert_eq!(capped.bumped(&legacy), None, "nothing left under the cap");
    }
}
