//! Calldata and transactions for guard tests.
#![allow(dead_code)]

use alloy::sol;
use alloy::sol_types::SolCall;
use alloy_consensus::TxEip1559;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};

sol! {
    function handleKLAYTransfer(bytes32 requestTxHash, address from, address to, uint256 value, uint64 requestedNonce, uint64 requestedBlockNumber, bytes extraData);
    function handleERC20Transfer(bytes32 requestTxHash, address from, address to, address tokenAddress, uint256 value, uint64 requestedNonce, uint64 requestedBlockNumber, bytes extraData);
    function setKLAYFee(uint256 fee, uint64 requestNonce);
    function proposeOperatorKey(address newOperator);
    function acceptOperatorKey(address oldOperator);
    function transferOwnership(address newOwner);
}

pub const CHAIN: u64 = 1001;
pub const BRIDGE: Address = Address::repeat_byte(0xb1);

/// A native-coin handle vote for request `nonce`; `amount` makes votes differ.
pub fn klay_vote(nonce: u64, amount: u64) -> Bytes {
    handleKLAYTransferCall {
        requestTxHash: B256::repeat_byte(0x11),
        from: Address::repeat_byte(0x22),
        to: Address::repeat_byte(0x33),
        value: U256::from(amount),
        requestedNonce: nonce,
        requestedBlockNumber: 77,
        extraData: Bytes::new(),
    }
    .abi_encode()
    .into()
}

pub fn erc20_vote(nonce: u64, amount: u64) -> Bytes {
    handleERC20TransferCall {
        requestTxHash: B256::repeat_byte(0x12),
        from: Address::repeat_byte(0x22),
        to: Address::repeat_byte(0x33),
        tokenAddress: Address::repeat_byte(0x44),
        value: U256::from(amount),
        requestedNonce: nonce,
        requestedBlockNumber: 78,
        extraData: Bytes::new(),
    }
    .abi_encode()
    .into()
}

pub fn fee_vote(config_nonce: u64, fee: u64) -> Bytes {
    setKLAYFeeCall {
        fee: U256::from(fee),
        requestNonce: config_nonce,
    }
    .abi_encode()
    .into()
}

pub fn propose_key() -> Bytes {
    proposeOperatorKeyCall {
        newOperator: Address::repeat_byte(0x55),
    }
    .abi_encode()
    .into()
}

pub fn propose(new: Address) -> Bytes {
    proposeOperatorKeyCall { newOperator: new }
        .abi_encode()
        .into()
}

pub fn accept(old: Address) -> Bytes {
    acceptOperatorKeyCall { oldOperator: old }
        .abi_encode()
        .into()
}

pub fn transfer_ownership() -> Bytes {
    transferOwnershipCall {
        newOwner: Address::repeat_byte(0x66),
    }
    .abi_encode()
    .into()
}

pub fn tx(chain_id: u64, to: Address, value: u64, input: Bytes) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce: 0,
        gas_limit: 300_000,
        max_fee_per_gas: 2_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        access_list: Default::default(),
        input,
    }
}
