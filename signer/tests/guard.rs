//! The signing guard: table-driven policy and journal cases, and a crash between record and
//! sign.

mod common;
#[path = "common/votes.rs"]
mod votes;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use async_trait::async_trait;
use bridge_signer::guard::{Journal, Namespace, VoteKey};
use bridge_signer::{Guard, GuardError, Refused, Safe, Signer, SignerError};
use common::LocalKey;
use votes::*;

fn guard(dir: &tempfile::TempDir) -> Guard<LocalKey> {
    let journal = Journal::open(dir.path().join("votes.sqlite")).unwrap();
    Guard::new(LocalKey::new(3), CHAIN, BRIDGE, journal)
}

fn conflict(namespace: Namespace, nonce: u64, recorded: &[u8], attempted: &[u8]) -> Refused {
    Refused::ConflictingVote {
        key: VoteKey {
            chain_id: CHAIN,
            bridge: BRIDGE,
            namespace,
            nonce,
        },
        recorded: keccak256(recorded),
        attempted: keccak256(attempted),
    }
}

/// Each row runs in order against one journal: (name, tx, expected outcome).
#[tokio::test]
async fn policy_and_journal_table() {
    let dir = tempfile::tempdir().unwrap();
    let g = guard(&dir);
    let other = Address::repeat_byte(0xee);
    type Expected = Result<Safe, Refused>;
    let cases: Vec<(&str, alloy_consensus::TxEip1559, Expected)> = vec![
        (
            "first vote",
            tx(CHAIN, BRIDGE, 0, klay_vote(1, 100)),
            Ok(Safe::Valid),
        ),
        (
            "same vote re-sent",
            tx(CHAIN, BRIDGE, 0, klay_vote(1, 100)),
            Ok(Safe::SameVote),
        ),
        (
            "conflicting vote",
            tx(CHAIN, BRIDGE, 0, klay_vote(1, 999)),
            Err(conflict(
                Namespace::Request,
                1,
                &klay_vote(1, 100),
                &klay_vote(1, 999),
            )),
        ),
        (
            "conflicting vote via another handle function",
            tx(CHAIN, BRIDGE, 0, erc20_vote(1, 100)),
            Err(conflict(
                Namespace::Request,
                1,
                &klay_vote(1, 100),
                &erc20_vote(1, 100),
            )),
        ),
        (
            "next nonce",
            tx(CHAIN, BRIDGE, 0, erc20_vote(2, 5)),
            Ok(Safe::Valid),
        ),
        (
            "wrong chain",
            tx(CHAIN + 1, BRIDGE, 0, klay_vote(3, 1)),
            Err(Refused::WrongChain {
                expected: CHAIN,
                got: Some(CHAIN + 1),
            }),
        ),
        (
            "wrong to",
            tx(CHAIN, other, 0, klay_vote(3, 1)),
            Err(Refused::WrongTo {
                expected: BRIDGE,
                got: other,
            }),
        ),
        (
            "non-zero value",
            tx(CHAIN, BRIDGE, 1, klay_vote(3, 1)),
            Err(Refused::NonZeroValue(U256::from(1))),
        ),
        (
            "wrong selector (owner call)",
            tx(CHAIN, BRIDGE, 0, transfer_ownership()),
            Err(Refused::UnknownSelector(
                transfer_ownership()[..4].try_into().unwrap(),
            )),
        ),
        (
            "no selector",
            tx(CHAIN, BRIDGE, 0, vec![0xab, 0xcd].into()),
            Err(Refused::NoSelector),
        ),
        // Config nonce 1 is its own namespace: no clash with request nonce 1.
        (
            "config vote",
            tx(CHAIN, BRIDGE, 0, fee_vote(1, 10)),
            Ok(Safe::Valid),
        ),
        (
            "same config vote",
            tx(CHAIN, BRIDGE, 0, fee_vote(1, 10)),
            Ok(Safe::SameVote),
        ),
        (
            "conflicting config vote",
            tx(CHAIN, BRIDGE, 0, fee_vote(1, 11)),
            Err(conflict(
                Namespace::Config,
                1,
                &fee_vote(1, 10),
                &fee_vote(1, 11),
            )),
        ),
        (
            "key rotation without a permit (the running agent)",
            tx(CHAIN, BRIDGE, 0, propose_key()),
            Err(Refused::RotationNotPermitted {
                function: "proposeOperatorKey",
            }),
        ),
    ];
    let (mut signed, mut refused, mut conflicts) = (0, 0, 0);
    for (name, mut t, expected) in cases {
        let got = g.sign_transaction(&mut t).await;
        match (&got, &expected) {
            (Ok(sig), Ok(_)) => {
                signed += 1;
                let recovered = sig
                    .recover_address_from_prehash(
                        &alloy_consensus::SignableTransaction::signature_hash(&t),
                    )
                    .unwrap();
                assert_eq!(recovered, g.signer().address(), "{name}");
            }
            (Err(GuardError::Refused(r)), Err(e)) => {
                assert_eq!(r, e, "{name}");
                refused += 1;
                if matches!(e, Refused::ConflictingVote { .. }) {
                    conflicts += 1;
                }
            }
            _ => panic!("{name}: expected {expected:?}, got {got:?}"),
        }
        // Outcomes as comparable values, without signing.
        if let Ok(safe) = expected {
            assert_eq!(
                g.authorize(&t).await.unwrap(),
                match safe {
                    Safe::KeyRotation => Safe::KeyRotation,
                    _ => Safe::SameVote,
                },
                "{name}: authorize after signing"
            );
        }
    }
    assert_eq!(g.counters().signed(), signed);
    assert_eq!(g.counters().conflicting(), conflicts);
    assert!(g.counters().refused() >= refused);
    assert_eq!(g.journal().conflict_count().unwrap(), conflicts);
    assert_eq!(
        g.journal()
            .lookup(&VoteKey {
                chain_id: CHAIN,
                bridge: BRIDGE,
                namespace: Namespace::Request,
                nonce: 1
            })
            .unwrap(),
        Some(keccak256(klay_vote(1, 100)))
    );
}

/// With a permit for `old → new`, exactly the rotation's own calls pass.
#[tokio::test]
async fn rotation_permit_allows_only_the_own_seat_move() {
    let dir = tempfile::tempdir().unwrap();
    let journal = std::sync::Arc::new(Journal::open(dir.path().join("votes.sqlite")).unwrap());
    let (old_key, new_key) = (LocalKey::new(3), LocalKey::new(4));
    let (old, new) = (old_key.address(), new_key.address());
    let permit = bridge_signer::guard::RotationPermit { old, new };
    let old_g =
        Guard::with_journal(old_key, CHAIN, BRIDGE, journal.clone()).with_rotation_permit(permit);
    let new_g = Guard::with_journal(new_key, CHAIN, BRIDGE, journal).with_rotation_permit(permit);
    let stranger = Address::repeat_byte(0x99);
    let outside = |function| move |r: &Refused| matches!(r, Refused::RotationOutsidePermit { function: f, .. } if *f == function);
    type Check = Box<dyn Fn(&Refused) -> bool>;
    let cases: Vec<(
        &str,
        &Guard<LocalKey>,
        alloy_consensus::TxEip1559,
        Option<Check>,
    )> = vec![
        (
            "old proposes new",
            &old_g,
            tx(CHAIN, BRIDGE, 0, propose(new)),
            None,
        ),
        (
            "old proposes a stranger",
            &old_g,
            tx(CHAIN, BRIDGE, 0, propose(stranger)),
            Some(Box::new(outside("proposeOperatorKey"))),
        ),
        (
            "new proposes",
            &new_g,
            tx(CHAIN, BRIDGE, 0, propose(new)),
            Some(Box::new(outside("proposeOperatorKey"))),
        ),
        (
            "new accepts old's seat",
            &new_g,
            tx(CHAIN, BRIDGE, 0, accept(old)),
            None,
        ),
        (
            "new accepts another seat",
            &new_g,
            tx(CHAIN, BRIDGE, 0, accept(stranger)),
            Some(Box::new(outside("acceptOperatorKey"))),
        ),
        (
            "old accepts",
            &old_g,
            tx(CHAIN, BRIDGE, 0, accept(old)),
            Some(Box::new(outside("acceptOperatorKey"))),
        ),
        (
            "gas old → new",
            &old_g,
            tx(CHAIN, new, 5, Default::default()),
            None,
        ),
        (
            "gas old → stranger",
            &old_g,
            tx(CHAIN, stranger, 5, Default::default()),
            Some(Box::new(|r: &Refused| matches!(r, Refused::WrongTo { .. }))),
        ),
        (
            "gas new → new",
            &new_g,
            tx(CHAIN, new, 5, Default::default()),
            Some(Box::new(|r: &Refused| matches!(r, Refused::WrongTo { .. }))),
        ),
        (
            "call to new with calldata",
            &old_g,
            tx(CHAIN, new, 0, fee_vote(1, 1)),
            Some(Box::new(outside("gas transfer"))),
        ),
        (
            "gas on another chain",
            &old_g,
            tx(CHAIN + 1, new, 5, Default::default()),
            Some(Box::new(|r: &Refused| {
                matches!(r, Refused::WrongChain { .. })
            })),
        ),
        (
            "owner call still refused",
            &old_g,
            tx(CHAIN, BRIDGE, 0, transfer_ownership()),
            Some(Box::new(|r: &Refused| {
                matches!(r, Refused::UnknownSelector(_))
            })),
        ),
        (
            "votes still pass",
            &new_g,
            tx(CHAIN, BRIDGE, 0, klay_vote(1, 1)),
            None,
        ),
    ];
    for (name, g, mut t, refused) in cases {
        let got = g.sign_transaction(&mut t).await;
        match (got, refused) {
            (Ok(_), None) => {}
            (Err(GuardError::Refused(r)), Some(check)) => assert!(check(&r), "{name}: {r:?}"),
            (got, _) => panic!("{name}: unexpected {got:?}"),
        }
    }
}

#[tokio::test]
async fn malformed_arguments_and_7702_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let g = guard(&dir);
    let mut truncated = klay_vote(9, 1).to_vec();
    truncated.truncate(40);
    let got = g.authorize(&tx(CHAIN, BRIDGE, 0, truncated.into())).await;
    assert!(
        matches!(got, Err(GuardError::Refused(Refused::MalformedCall { .. }))),
        "{got:?}"
    );
    // Nothing was journalled for the refused attempt.
    let key = VoteKey {
        chain_id: CHAIN,
        bridge: BRIDGE,
        namespace: Namespace::Request,
        nonce: 9,
    };
    assert_eq!(g.journal().lookup(&key).unwrap(), None);

    let t7702 = alloy_consensus::TxEip7702 {
        chain_id: CHAIN,
        to: BRIDGE,
        input: klay_vote(9, 1),
        authorization_list: vec![alloy::eips::eip7702::SignedAuthorization::new_unchecked(
            alloy::eips::eip7702::Authorization {
                chain_id: U256::from(CHAIN),
                address: Address::repeat_byte(0x66),
                nonce: 0,
            },
            0,
            U256::from(1),
            U256::from(1),
        )],
        ..Default::default()
    };
    assert_eq!(g.check_policy(&t7702), Err(Refused::Authorizations));
}

/// A signer that reports when it is asked and then never answers, so the child process can
/// be killed after the journal row is written and before any signature exists.
#[derive(Debug)]
struct Hangs;

#[async_trait]
impl Signer for Hangs {
    fn address(&self) -> Address {
        Address::repeat_byte(0x99)
    }

    async fn sign_hash(&self, _hash: &B256) -> Result<Signature, SignerError> {
        println!("ASKED-TO-SIGN");
        use std::io::Write;
        std::io::stdout().flush().unwrap();
        loop {
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    }
}

const CHILD_ENV: &str = "BRIDGE_SIGNER_CRASH_CHILD_JOURNAL";

/// Runs only inside the child process started by `journal_survives_sigkill_between_record_and_sign`.
#[tokio::test]
#[ignore = "child-process half of journal_survives_sigkill_between_record_and_sign"]
async fn crash_child() {
    let path = std::env::var(CHILD_ENV).expect("run by the crash test only");
    let g = Guard::new(Hangs, CHAIN, BRIDGE, Journal::open(path).unwrap());
    let mut t = tx(CHAIN, BRIDGE, 0, klay_vote(42, 1_000));
    let _ = g.sign_transaction(&mut t).await;
    unreachable!("the signer never returns");
}

#[tokio::test]
async fn journal_survives_sigkill_between_record_and_sign() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("votes.sqlite");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "crash_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut asked = false;
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().contains("ASKED-TO-SIGN") {
            asked = true;
            break;
        }
    }
    assert!(asked, "child exited before asking the signer");
    child.kill().unwrap(); // SIGKILL: no destructors, no checkpoint
    let status = child.wait().unwrap();
    assert!(!status.success());

    let g = guard_at(&path);
    let conflicting = g
        .sign_transaction(&mut tx(CHAIN, BRIDGE, 0, klay_vote(42, 2_000)))
        .await;
    assert!(
        matches!(
            conflicting,
            Err(GuardError::Refused(Refused::ConflictingVote { recorded, .. })) if recorded == keccak256(klay_vote(42, 1_000))
        ),
        "{conflicting:?}"
    );
    // The vote the child recorded may still be (re-)sent.
    let same = g
        .authorize(&tx(CHAIN, BRIDGE, 0, klay_vote(42, 1_000)))
        .await
        .unwrap();
    assert_eq!(same, Safe::SameVote);
}

fn guard_at(path: &std::path::Path) -> Guard<LocalKey> {
    Guard::new(
        LocalKey::new(3),
        CHAIN,
        BRIDGE,
        Journal::open(path).unwrap(),
    )
}
