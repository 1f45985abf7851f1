//! What the last bridge check (`bridge_check/`) found on each chain: the input of the
//! "bridge not verified" / "key not seated" readiness reasons and of the `bridge_dialect_info`,
//! `bridge_contract_verified` and `bridge_operator_seated` families.

use crate::config::Side;
use crate::dialect::Dialect;

use super::exposition::{Encoder, Kind, Sample};

/// One chain's bridge, as the agent last checked it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BridgeState {
    /// Not checked yet (the directions are not started before the first verdict).
    #[default]
    Unchecked,
    /// The address is not this chain's bridge of the configured pair: nothing is voted. The
    /// message names the chain, the address and what it answered.
    Refused(String),
    /// The bridge checked out, but this operator's key holds no seat: nothing is voted.
    NotSeated { dialect: Dialect, message: String },
    /// Bridge and seat verified: votes go.
    Verified(Dialect),
}

impl BridgeState {
    /// The dialect, once the bridge answered its views.
    pub fn dialect(&self) -> Option<Dialect> {
        match self {
            BridgeState::NotSeated { dialect, .. } | BridgeState::Verified(dialect) => {
                Some(*dialect)
            }
            _ => None,
        }
    }

    /// Votes to this chain may be sent.
    pub fn can_vote(&self) -> bool {
        matches!(self, BridgeState::Verified(_))
    }

    /// The address is this chain's bridge (whatever the seat): its requests may be read.
    pub fn is_bridge(&self) -> bool {
        self.dialect().is_some()
    }
}

pub(super) fn render(e: &mut Encoder, states: &[(Side, BridgeState); 2]) {
    let dialects: Vec<Sample<'_>> = states
        .iter()
        .filter_map(|(side, st)| {
            st.dialect().map(|d| {
                (
                    vec![("chain", side.as_str()), ("dialect", d.as_str())],
                    1u64.into(),
                )
            })
        })
        .collect();
    e.family(
        "bridge_dialect_info",
        "The chain's bridge dialect in use (ours | kaia), found from the bridge itself or pinned in the config (always 1).",
        Kind::Gauge,
        &dialects,
    );
    let per_chain = |f: fn(&BridgeState) -> bool| -> Vec<Sample<'_>> {
        states
            .iter()
            .map(|(side, st)| (vec![("chain", side.as_str())], f(st).into()))
            .collect()
    };
    e.family(
        "bridge_contract_verified",
        "1 when the last check found the configured address to be this chain's bridge of the pair (code, views, counterpart).",
        Kind::Gauge,
        &per_chain(BridgeState::is_bridge),
    );
    e.family(
        "bridge_operator_seated",
        "1 when the last check found this operator's key seated on the chain's bridge (0: it votes nothing).",
        Kind::Gauge,
        &per_chain(BridgeState::can_vote),
    );
}

#[cfg(test)]
mod tests {
    use super::BridgeState;
    use crate::config::Side;
    use crate::dialect::Dialect;
    use crate::metrics::{AgentMetrics, NotReady};

    /// A state, its `/readyz` reason, `bridge_dialect_info`'s dialect, and the values of
    /// `bridge_contract_verified` and `bridge_operator_seated`.
    type Case = (
        BridgeState,
        Option<&'static str>,
        Option<&'static str>,
        u8,
        u8,
    );

    /// Each state: its readiness reason (if any) and the three families' samples.
    #[test]
    fn each_state_reads_the_same_on_readyz_and_metrics() {
        let cases: [Case; 4] = [
            (BridgeState::Unchecked, None, None, 0, 0),
            (
                BridgeState::Refused("parent bridge 0x…: no code".into()),
                Some("chain parent: bridge not verified: parent bridge 0x…: no code"),
                None,
                0,
                0,
            ),
            (
                BridgeState::NotSeated {
                    dialect: Dialect::Kaia,
                    message: "key 0x… holds no seat".into(),
                },
                Some("chain parent: key not seated: key 0x… holds no seat"),
                Some("kaia"),
                1,
                0,
            ),
            (
                BridgeState::Verified(Dialect::Ours),
                None,
                Some("ours"),
                1,
                1,
            ),
        ];
        for (state, reason, dialect, verified, seated) in cases {
            let m = AgentMetrics::new();
            m.set_bridge(Side::Parent, state.clone());
            let reasons: Vec<String> = m
                .not_ready()
                .iter()
                .filter(|r| {
                    matches!(
                        r,
                        NotReady::BridgeNotVerified { .. } | NotReady::KeyNotSeated { .. }
                    )
                })
                .map(|r| r.to_string())
                .collect();
            assert_eq!(reasons, reason.into_iter().collect::<Vec<_>>(), "{state:?}");
            let text = m.render();
            let info = dialect
                .map(|d| format!("bridge_dialect_info{{chain=\"parent\",dialect=\"{d}\"}} 1"));
            assert_eq!(
                text.lines()
                    .filter(|l| l.starts_with("bridge_dialect_info{"))
                    .count(),
                usize::from(info.is_some()),
                "{state:?}: {text}"
            );
            if let Some(info) = info {
                assert!(text.contains(&info), "{state:?}: {text}");
            }
            assert!(
                text.contains(&format!(
                    "bridge_contract_verified{{chain=\"parent\"}} {verified}"
                )),
                "{state:?}: {text}"
            );
            assert!(
                text.contains(&format!(
                    "bridge_operator_seated{{chain=\"parent\"}} {seated}"
                )),
                "{state:?}: {text}"
            );
        }
    }
}
