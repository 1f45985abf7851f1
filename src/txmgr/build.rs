//! The one way a transaction is built from its fields and the chain's fees: type 2 for
//! EIP-1559 fees, legacy (EIP-155) otherwise. The tx manager's votes and the CLI's one-off
//! calls (`admin_tx.rs`) both sign what this builds.

use super::Fees;
use alloy::consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy::primitives::{Address, Bytes, Signature, TxKind, U256};

/// What a transaction says, apart from its signature.
#[derive(Debug, Clone)]
pub struct TxFields {
    pub chain_id: u64,
    pub nonce: u64,
    pub gas_limit: u64,
    pub fees: Fees,
    pub to: Address,
    pub value: U256,
    pub input: Bytes,
}

/// A transaction ready to be signed.
#[derive(Debug, Clone)]
pub enum UnsignedTx {
    Eip1559(TxEip1559),
    Legacy(TxLegacy),
}

impl TxFields {
    pub fn unsigned(self) -> UnsignedTx {
        let to = TxKind::Call(self.to);
        match self.fees {
            Fees::Eip1559 { max_fee, priority } => UnsignedTx::Eip1559(TxEip1559 {
                chain_id: self.chain_id,
                nonce: self.nonce,
                gas_limit: self.gas_limit,
                max_fee_per_gas: max_fee,
                max_priority_fee_per_gas: priority,
                to,
                value: self.value,
                access_list: Default::default(),
                input: self.input,
            }),
            Fees::Legacy { gas_price } => UnsignedTx::Legacy(TxLegacy {
                chain_id: Some(self.chain_id),
                nonce: self.nonce,
                gas_price,
                gas_limit: self.gas_limit,
                to,
                value: self.value,
                input: self.input,
            }),
        }
    }
}

impl UnsignedTx {
    /// What a guard or signer signs.
    pub fn signable(&mut self) -> &mut dyn SignableTransaction<Signature> {
        match self {
            Self::Eip1559(tx) => tx,
            Self::Legacy(tx) => tx,
        }
    }

    pub fn into_signed(self, signature: Signature) -> TxEnvelope {
        match self {
            Self::Eip1559(tx) => tx.into_signed(signature).into(),
            Self::Legacy(tx) => tx.into_signed(signature).into(),
        }
    }
}
