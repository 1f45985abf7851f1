//! Turning a backend's raw ECDSA output into an Ethereum signature, or refusing to.
//!
//! ```text
//! raw r‖s (64 bytes) ─> parse ─> s := min(s, n − s)
//!   ─> R = (z·s⁻¹)·G + (r·s⁻¹)·Q      one double-scalar multiplication, Q the known key
//!   ─> x(R) == r ?  yes: the signature verifies for Q, and y(R)'s parity is the recovery id
//!                   no:  another key, another digest, or a corrupt signature: refuse
//! ```
//!
//! HSMs return r‖s without a recovery id, and about half of them with a high s (which Ethereum
//! rejects since EIP-2). The public key is known (read once at start), so verification itself
//! yields the recovery id: the point R it computes is the one recovery would start from. That
//! costs one multiplication where trial recovery plus a separate verify cost three. The rare
//! case x(R) ≥ n (recovery ids 2 and 3, which Ethereum cannot express) fails closed.

use alloy_primitives::{Address, B256, Signature, U256, keccak256};
use k256::ecdsa::{Signature as K256Signature, VerifyingKey};
use k256::elliptic_curve::Group;
use k256::elliptic_curve::ops::{LinearCombination, Reduce};
use k256::elliptic_curve::point::AffineCoordinates;
use k256::{ProjectivePoint, Scalar};

use crate::SignatureError;

/// Normalises and verifies a raw r‖s signature over `digest` by `key`, and finds its
/// recovery id; anything that does not match fails closed.
pub fn recoverable(
    raw: &[u8],
    digest: &B256,
    key: &VerifyingKey,
) -> Result<Signature, SignatureError> {
    if raw.len() != 64 {
        return Err(SignatureError::BadLength(raw.len()));
    }
    // Rejects r or s that are zero or not below the group order.
    let sig = K256Signature::from_slice(raw).map_err(|_| SignatureError::Malformed)?;
    let sig = sig.normalize_s().unwrap_or(sig);
    let (r, s) = (sig.r(), sig.s());
    let z = <Scalar as Reduce<k256::U256>>::reduce_bytes(&k256::FieldBytes::from(digest.0));
    // s is non-zero, so it has an inverse; the error arm is unreachable but fails closed.
    let s_inv = Option::<Scalar>::from(s.invert()).ok_or(SignatureError::Malformed)?;
    let q = ProjectivePoint::from(*key.as_affine());
    let big_r =
        ProjectivePoint::lincomb(&ProjectivePoint::GENERATOR, &(z * s_inv), &q, &(*r * s_inv));
    if bool::from(big_r.is_identity()) {
        return Err(SignatureError::VerifyFailed);
    }
    let big_r = big_r.to_affine();
    // Exact equality, not only modulo n: x(R) ≥ n cannot be expressed in an Ethereum signature.
    if big_r.x() != r.to_bytes() {
        return Err(SignatureError::WrongKey {
            expected: address_of(key),
        });
    }
    let (r, s) = sig.split_bytes();
    Ok(Signature::new(
        U256::from_be_slice(&r),
        U256::from_be_slice(&s),
        bool::from(big_r.y_is_odd()),
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

    /// Differential: the verification-derived recovery id equals k256's own, for many
    /// digests, whether the raw input was high-s or low-s.
    #[test]
    fn matches_k256_recoverable_signatures() {
        let sk = key();
        let vk = *sk.verifying_key();
        for i in 0u32..300 {
            let digest = keccak256(i.to_be_bytes());
            let (expected, recid) = sk.sign_prehash_recoverable(digest.as_slice()).unwrap();
            for raw in [expected.to_bytes().to_vec(), raw_high_s(&sk, &digest)] {
                let sig = recoverable(&raw, &digest, &vk).unwrap();
                let (r, s) = expected.split_bytes();
                assert_eq!(sig.r(), U256::from_be_slice(&r));
                assert_eq!(sig.s(), U256::from_be_slice(&s));
                assert_eq!(sig.v(), recid.is_y_odd(), "digest {i}");
            }
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
