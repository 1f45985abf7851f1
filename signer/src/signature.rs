//! Turning a backend's raw ECDSA output into an Ethereum signature, or refusing to.
//!
//! ```text
//! raw r‖s (64 bytes) ─> parse ─> s := min(s, n − s) ─> for v in {0, 1}: recover(digest, sig, v)
//!                                                        == known key? ─> verify ─> (r, s, v)
//! ```
//!
//! HSMs return r‖s without a recovery id, and about half of them with a high s (which Ethereum
//! rejects since EIP-2). The public key is known (read once at start), so the recovery id is
//! found by trial. Anything that does not match fails closed.

use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use k256::ecdsa::{
    RecoveryId, Signature as K256Signature, VerifyingKey, signature::hazmat::PrehashVerifier,
};

use crate::SignatureError;

/// Normalises, recovers and verifies a raw r‖s signature over `digest` by `key`.
pub fn recoverable(
    raw: &[u8],
    digest: &B256,
    key: &VerifyingKey,
) -> Result<Signature, SignatureError> {
    if raw.len() != 64 {
        return Err(SignatureError::BadLength(raw.len()));
    }
    let sig = K256Signature::from_slice(raw).map_err(|_| SignatureError::Malformed)?;
    let sig = sig.normalize_s().unwrap_or(sig);
    let parity = [false, true]
        .into_iter()
        .find(|&odd| {
            VerifyingKey::recover_from_prehash(digest.as_slice(), &sig, RecoveryId::new(odd, false))
                .is_ok_and(|recovered| recovered == *key)
        })
        .ok_or(SignatureError::WrongKey {
            expected: address_of(key),
        })?;
    key.verify_prehash(digest.as_slice(), &sig)
        .map_err(|_| SignatureError::VerifyFailed)?;
    let (r, s) = sig.split_bytes();
    Ok(Signature::new(
        U256::from_be_slice(&r),
        U256::from_be_slice(&s),
        parity,
    ))
}

/// The Ethereum address of a secp256k1 public key.
pub fn address_of(key: &VerifyingKey) -> Address {
    let point = key.to_encoded_point(false);
    Address::from_slice(&keccak256(&point.as_bytes()[1..])[12..])
}

/// Parses a public key as PKCS#11 `CKA_EC_POINT` holds it: a DER OCTET STRING around the
/// uncompressed point (`04 41 04 X Y`). A bare 65-byte point (`04 X Y`, as some modules return)
/// is accepted too.
pub fn parse_ec_point(bytes: &[u8]) -> Result<VerifyingKey, SignatureError> {
    let point = match bytes {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 => rest,
        [0x04, ..] if bytes.len() == 65 => bytes,
        _ => {
            return Err(SignatureError::BadPublicKey(format!(
                "expected DER 04 41 04‖X‖Y (67 bytes) or 04‖X‖Y (65 bytes), got {} bytes",
                bytes.len()
            )));
        }
    };
    if point[0] != 0x04 {
        return Err(SignatureError::BadPublicKey(
            "point is compressed or not an EC point".into(),
        ));
    }
    VerifyingKey::from_sec1_bytes(point).map_err(|e| SignatureError::BadPublicKey(e.to_string()))
}

/// Low-s check used by tests and by callers that want to double-check a signature.
pub fn is_low_s(sig: &Signature) -> bool {
    const HALF_N: U256 = U256::from_be_bytes([
        0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b,
        0x20, 0xa0,
    ]);
    sig.s() <= HALF_N
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    fn key() -> SigningKey {
        SigningKey::from_slice(&[7u8; 32]).unwrap()
    }

    /// Signs with k256 and returns the high-s twin of the signature, as an HSM may.
    fn raw_high_s(sk: &SigningKey, digest: &B256) -> Vec<u8> {
        let (sig, _) = sk.sign_prehash_recoverable(digest.as_slice()).unwrap();
        let (r, s) = (sig.r(), sig.s());
        let high_s = -*s;
        let twin = K256Signature::from_scalars(r.to_bytes(), high_s.to_bytes()).unwrap();
        assert!(twin.normalize_s().is_some(), "twin must be high-s");
        twin.to_bytes().to_vec()
    }

    #[test]
    fn high_s_is_normalised_and_recovers() {
        let sk = key();
        let vk = *sk.verifying_key();
        for i in 0u8..50 {
            let digest = keccak256([i]);
            let sig = recoverable(&raw_high_s(&sk, &digest), &digest, &vk).unwrap();
            assert!(is_low_s(&sig));
            assert_eq!(
                sig.recover_address_from_prehash(&digest).unwrap(),
                address_of(&vk)
            );
        }
    }

    #[test]
    fn other_key_or_digest_fails_closed() {
        let sk = key();
        let other = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let digest = keccak256(b"vote");
        let raw = raw_high_s(&other, &digest);
        assert_eq!(
            recoverable(&raw, &digest, sk.verifying_key()),
            Err(SignatureError::WrongKey {
                expected: address_of(sk.verifying_key())
            })
        );
        let raw = raw_high_s(&sk, &keccak256(b"another"));
        assert!(matches!(
            recoverable(&raw, &digest, sk.verifying_key()),
            Err(SignatureError::WrongKey { .. })
        ));
        assert_eq!(
            recoverable(&[0u8; 64], &digest, sk.verifying_key()),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            recoverable(&[1u8; 63], &digest, sk.verifying_key()),
            Err(SignatureError::BadLength(63))
        );
    }

    #[test]
    fn ec_point_der_and_raw() {
        let vk = *key().verifying_key();
        let point = vk.to_encoded_point(false);
        let mut der = vec![0x04, 0x41];
        der.extend_from_slice(point.as_bytes());
        assert_eq!(parse_ec_point(&der).unwrap(), vk);
        assert_eq!(parse_ec_point(point.as_bytes()).unwrap(), vk);
        assert!(parse_ec_point(&der[..66]).is_err());
        let compressed = vk.to_encoded_point(true);
        assert!(parse_ec_point(compressed.as_bytes()).is_err());
    }
}
