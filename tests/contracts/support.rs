//! Shared helpers for the contract tests.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, Bytes, U256, keccak256};
use alloy::providers::{DynProvider, Provider};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use bridge_agent::contracts::{Bridge, ServiceChainNFT, ServiceChainToken};
use bridge_devkit::devnet::stand_in::{self, Request};
use bridge_devkit::devnet::{Devnet, DevnetOptions, Side};

pub use bridge_devkit::devnet::seed;

/// A devnet plus the keys a test needs. The temp dir (chain logs) lives as long as it.
pub struct Net {
    pub d: Devnet,
    pub ops: Vec<PrivateKeySigner>,
    pub users: Vec<PrivateKeySigner>,
    pub owner: PrivateKeySigner,
    _dir: tempfile::TempDir,
}

pub async fn net() -> Net {
    net_with(DevnetOptions::default()).await
}

pub async fn net_with(opts: DevnetOptions) -> Net {
    let dir = tempfile::Builder::new()
        .prefix("bridge-contract-test-")
        .tempdir()
        .expect("temp dir");
    let d = Devnet::start(DevnetOptions {
        dir: dir.path().to_owned(),
        ..opts
    })
    .await
    .expect("devnet starts");
    Net {
        ops: d.dev_operator_keys(),
        users: d.users(),
        owner: d.owner(),
        d,
        _dir: dir,
    }
}

/// An address nobody holds a key for, with a zero balance everywhere.
pub fn fresh_address(label: &str) -> Address {
    Address::from_word(keccak256(label.as_bytes()))
}

pub fn coins(n: u64) -> U256 {
    seed::coins(n)
}

/// Sends a transaction from `signer` and asserts it succeeded.
pub async fn send_ok(
    side: &Side,
    signer: &PrivateKeySigner,
    to: Address,
    data: Bytes,
    value: U256,
) -> TransactionReceipt {
    let p = side.provider_with(signer.clone());
    let tx = TransactionRequest::default()
        .with_to(to)
        .with_input(data)
        .with_value(value);
    let receipt = p
        .send_transaction(tx)
        .await
        .expect("transaction accepted")
        .get_receipt()
        .await
        .expect("receipt");
    assert!(
        receipt.status(),
        "transaction {} reverted",
        receipt.transaction_hash
    );
    receipt
}

/// Simulates a call from `from` that must revert with one of the bridge's errors, and returns it.
pub async fn revert_of(
    side: &Side,
    from: Address,
    to: Address,
    data: Bytes,
    value: U256,
) -> Bridge::BridgeErrors {
    let tx = TransactionRequest::default()
        .with_from(from)
        .with_to(to)
        .with_input(data)
        .with_value(value);
    match side.reader().call(tx).await {
        Ok(out) => panic!("call was expected to revert but returned {out}"),
        Err(e) => {
            let payload = e
                .as_error_resp()
                .unwrap_or_else(|| panic!("not a revert: {e}"));
            payload
                .as_decoded_interface_error::<Bridge::BridgeErrors>()
                .unwrap_or_else(|| panic!("revert is not a bridge error: {payload:?}"))
        }
    }
}

pub fn request_from(receipt: &TransactionReceipt) -> Request {
    let reqs: Vec<Request> = receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| stand_in::decode_request(l).ok())
        .collect();
    assert_eq!(
        reqs.len(),
        1,
        "exactly one request event in {}",
        receipt.transaction_hash
    );
    reqs.into_iter().next().unwrap()
}

pub fn handled_nonces(receipt: &TransactionReceipt) -> Vec<u64> {
    receipt
        .inner
        .logs()
        .iter()
        .filter_map(|l| l.log_decode::<Bridge::HandleValueTransfer>().ok())
        .map(|l| l.inner.data.handleNonce)
        .collect()
}

pub async fn request_native(
    side: &Side,
    user: &PrivateKeySigner,
    to: Address,
    value: U256,
    paid: U256,
) -> Request {
    let data = Bridge::requestKLAYTransferCall {
        to,
        value,
        extraData: Bytes::from_static(b"native"),
    };
    request_from(&send_ok(side, user, side.bridge, encode(data), paid).await)
}

pub async fn request_erc20(
    side: &Side,
    user: &PrivateKeySigner,
    to: Address,
    value: U256,
    fee_limit: U256,
) -> Request {
    let approve = ServiceChainToken::approveCall {
        spender: side.bridge,
        value: value + fee_limit,
    };
    send_ok(side, user, side.erc20, encode(approve), U256::ZERO).await;
    let data = Bridge::requestERC20TransferCall {
        token: side.erc20,
        to,
        value,
        feeLimit: fee_limit,
        extraData: Bytes::from_static(b"erc20"),
    };
    request_from(&send_ok(side, user, side.bridge, encode(data), U256::ZERO).await)
}

pub async fn request_erc721(
    side: &Side,
    user: &PrivateKeySigner,
    to: Address,
    id: U256,
) -> Request {
    let approve = ServiceChainNFT::approveCall {
        to: side.bridge,
        tokenId: id,
    };
    send_ok(side, user, side.erc721, encode(approve), U256::ZERO).await;
    let data = Bridge::requestERC721TransferCall {
        token: side.erc721,
        to,
        tokenId: id,
        extraData: Bytes::from_static(b"erc721"),
    };
    request_from(&send_ok(side, user, side.bridge, encode(data), U256::ZERO).await)
}

pub fn encode(call: impl alloy::sol_types::SolCall) -> Bytes {
    call.abi_encode().into()
}

/// The handle calldata every honest operator builds for `req` from `source`.
pub async fn handle_data(source: &Side, req: &Request) -> Bytes {
    let reader = source.reader();
    let token = stand_in::counterpart_token(&reader, source.bridge, req)
        .await
        .expect("registry");
    stand_in::handle_calldata(req, token)
}

/// One operator's vote; asserts the transaction succeeded and returns the nonces it executed.
pub async fn vote(dest: &Side, op: &PrivateKeySigner, data: &Bytes) -> Vec<u64> {
    handled_nonces(&send_ok(dest, op, dest.bridge, data.clone(), U256::ZERO).await)
}

pub fn bridge(side: &Side) -> Bridge::BridgeInstance<DynProvider> {
    Bridge::new(side.bridge, side.reader())
}

pub fn erc20(side: &Side) -> ServiceChainToken::ServiceChainTokenInstance<DynProvider> {
    ServiceChainToken::new(side.erc20, side.reader())
}

pub fn erc721(side: &Side) -> ServiceChainNFT::ServiceChainNFTInstance<DynProvider> {
    ServiceChainNFT::new(side.erc721, side.reader())
}

pub async fn balance(side: &Side, who: Address) -> U256 {
    side.reader().get_balance(who).await.expect("balance")
}
