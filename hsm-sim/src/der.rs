//! DER for the one public key shape KMS returns for `ECC_SECG_P256K1`: a SubjectPublicKeyInfo
//! with algorithm id-ecPublicKey, parameters secp256k1, and the uncompressed point.
//!
//! ```text
//! SEQUENCE(86) { SEQUENCE(16) { OID 1.2.840.10045.2.1, OID 1.3.132.0.10 },
//!                BIT STRING(66) { 0 unused bits, 04 ‖ x ‖ y } }
//! ```

use k256::ecdsa::VerifyingKey;

/// Everything before the 65-byte uncompressed point.
const SPKI_PREFIX: [u8; 23] = [
    0x30, 0x56, // SEQUENCE, 86 bytes
    0x30, 0x10, // SEQUENCE, 16 bytes: AlgorithmIdentifier
    0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, // OID id-ecPublicKey
    0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a, // OID secp256k1
    0x03, 0x42, 0x00, // BIT STRING, 66 bytes, no unused bits
];

/// The DER SubjectPublicKeyInfo of a secp256k1 key (88 bytes).
pub fn spki(key: &VerifyingKey) -> Vec<u8> {
    let point = key.to_encoded_point(false);
    let mut der = Vec::with_capacity(SPKI_PREFIX.len() + 65);
    der.extend_from_slice(&SPKI_PREFIX);
    der.extend_from_slice(point.as_bytes());
    der
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::pkcs8::DecodePublicKey;

    #[test]
    fn spki_decodes_with_k256_to_the_same_key() {
        let sk = k256::ecdsa::SigningKey::from_slice(&[0x11; 32]).unwrap();
        let der = spki(sk.verifying_key());
        assert_eq!(der.len(), 88);
        let back = k256::PublicKey::from_public_key_der(&der).unwrap();
        assert_eq!(VerifyingKey::from(back), *sk.verifying_key());
    }
}
