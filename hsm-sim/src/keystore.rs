//! secp256k1 keys held in memory, their aliases, and the KMS views of them.
//!
//! Private keys are `k256` signing keys, which zeroize their scalar on drop; nothing here prints
//! them (`KeyEntry`'s `Debug` is written by hand). There is no import and no export of a private
//! key: keys are generated here and only their public halves and signatures leave.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use k256::ecdsa::signature::hazmat::PrehashSigner;
use k256::ecdsa::{Signature, SigningKey};
use rand::RngCore;
use rand::rngs::OsRng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::protocol::{ErrorCode, KmsError};

/// The only key spec and usage the simulator makes.
pub const KEY_SPEC: &str = "ECC_SECG_P256K1";
pub const KEY_USAGE: &str = "SIGN_VERIFY";
pub const SIGNING_ALGORITHM: &str = "ECDSA_SHA_256";

// Compile-time proof that dropping a key wipes it.
const _: fn() = || {
    fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
    zeroized_on_drop::<SigningKey>();
};

/// How `Sign` should go wrong, if at all (chosen by the fault layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignMode {
    /// Sign the requested digest with the requested key.
    Honest,
    /// A valid signature by the right key, over a different digest.
    OtherDigest,
    /// A valid signature over the right digest, by a different key.
    OtherKey,
}

struct KeyEntry {
    id: String,
    key: SigningKey,
    created: f64,
    description: String,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("id", &self.id)
            .field("key", &"REDACTED")
            .finish()
    }
}

#[derive(Debug)]
struct AliasEntry {
    target: String,
    created: f64,
}

/// All keys and aliases of one simulated account in one region.
#[derive(Debug)]
pub struct KeyStore {
    region: String,
    account: String,
    keys: BTreeMap<String, KeyEntry>,
    aliases: BTreeMap<String, AliasEntry>,
    /// Signs in wrong-signature `OtherKey` mode; never listed.
    decoy: KeyEntry,
}

fn now_epoch() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| (d.as_millis() as f64) / 1000.0)
        .unwrap_or(0.0)
}

/// A random UUID (version 4), as KMS key ids are.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn not_found(what: &str) -> KmsError {
    KmsError::new(
        ErrorCode::NotFoundException,
        format!("{what} is not found."),
    )
}

impl KeyStore {
    pub fn new(region: &str, account: &str) -> Self {
        KeyStore {
            region: region.to_owned(),
            account: account.to_owned(),
            keys: BTreeMap::new(),
            aliases: BTreeMap::new(),
            decoy: KeyEntry {
                id: "decoy".to_owned(),
                key: SigningKey::random(&mut OsRng),
                created: now_epoch(),
                description: String::new(),
            },
        }
    }

    fn key_arn(&self, id: &str) -> String {
        format!("arn:aws:kms:{}:{}:key/{id}", self.region, self.account)
    }

    fn alias_arn(&self, name: &str) -> String {
        format!("arn:aws:kms:{}:{}:{name}", self.region, self.account)
    }

    /// Generates a key and returns its id.
    pub fn create(&mut self, description: &str) -> String {
        let id = uuid_v4();
        let entry = KeyEntry {
            id: id.clone(),
            key: SigningKey::random(&mut OsRng),
            created: now_epoch(),
            description: description.to_owned(),
        };
        self.keys.insert(id.clone(), entry);
        id
    }

    /// Finds a key by id, key ARN, alias name (`alias/…`) or alias ARN.
    fn resolve(&self, key_id: &str) -> Result<&KeyEntry, KmsError> {
        if key_id.is_empty() {
            return Err(KmsError::new(
                ErrorCode::ValidationException,
                "KeyId must not be empty",
            ));
        }
        let resource = match key_id.strip_prefix("arn:") {
            Some(_) => {
                let parts: Vec<&str> = key_id.splitn(6, ':').collect();
                match parts.as_slice() {
                    [_, _, "kms", region, account, resource]
                        if *region == self.region && *account == self.account =>
                    {
                        *resource
                    }
                    [_, _, "kms", _, _, _] => return Err(not_found(&format!("Key '{key_id}'"))),
                    _ => {
                        return Err(KmsError::new(
                            ErrorCode::ValidationException,
                            format!("{key_id} is not a valid KMS ARN"),
                        ));
                    }
                }
            }
            None => key_id,
        };
        let id = if resource.starts_with("alias/") {
            match self.aliases.get(resource) {
                Some(alias) => alias.target.as_str(),
                None => return Err(not_found(&format!("Alias {}", self.alias_arn(resource)))),
            }
        } else {
            resource.strip_prefix("key/").unwrap_or(resource)
        };
        self.keys
            .get(id)
            .ok_or_else(|| not_found(&format!("Key '{}'", self.key_arn(id))))
    }

    /// The key id a `KeyId` parameter names.
    pub fn key_id(&self, key_id: &str) -> Result<String, KmsError> {
        self.resolve(key_id).map(|k| k.id.clone())
    }

    /// `KeyMetadata` as KMS describes a key.
    pub fn metadata(&self, key_id: &str) -> Result<Value, KmsError> {
        let k = self.resolve(key_id)?;
        Ok(json!({
            "AWSAccountId": self.account,
            "KeyId": k.id,
            "Arn": self.key_arn(&k.id),
            "CreationDate": k.created,
            "Enabled": true,
            "Description": k.description,
            "KeyUsage": KEY_USAGE,
            "KeyState": "Enabled",
            "Origin": "AWS_KMS",
            "KeyManager": "CUSTOMER",
            "CustomerMasterKeySpec": KEY_SPEC,
            "KeySpec": KEY_SPEC,
            "SigningAlgorithms": [SIGNING_ALGORITHM],
            "MultiRegion": false,
        }))
    }

    /// The `GetPublicKey` answer: a DER SubjectPublicKeyInfo (id-ecPublicKey, secp256k1,
    /// uncompressed point), base64.
    pub fn public_key(&self, key_id: &str) -> Result<Value, KmsError> {
        let k = self.resolve(key_id)?;
        let der = crate::der::spki(k.key.verifying_key());
        Ok(json!({
            "KeyId": self.key_arn(&k.id),
            "PublicKey": B64.encode(der),
            "CustomerMasterKeySpec": KEY_SPEC,
            "KeySpec": KEY_SPEC,
            "KeyUsage": KEY_USAGE,
            "SigningAlgorithms": [SIGNING_ALGORITHM],
        }))
    }

    /// Signs a 32-byte digest as given (no hashing again), and returns the `Sign` answer with a
    /// DER signature. With `high_s`, s is replaced by n − s, which real KMS does for about half
    /// of its signatures: still a valid ECDSA signature, but not Ethereum's canonical form.
    pub fn sign(
        &self,
        key_id: &str,
        digest: &[u8; 32],
        mode: SignMode,
        high_s: bool,
    ) -> Result<Value, KmsError> {
        let k = self.resolve(key_id)?;
        let (key, digest) = match mode {
            SignMode::Honest => (&k.key, *digest),
            SignMode::OtherKey => (&self.decoy.key, *digest),
            SignMode::OtherDigest => {
                let mut h = Sha256::new();
                h.update(b"hsm-sim wrong digest");
                h.update(digest);
                (&k.key, h.finalize().into())
            }
        };
        let sig: Signature = key
            .sign_prehash(&digest)
            .map_err(|e| KmsError::new(ErrorCode::KmsInternalException, e.to_string()))?;
        let sig = if high_s {
            let (r, s) = sig.split_scalars();
            Signature::from_scalars(r, -s)
                .map_err(|e| KmsError::new(ErrorCode::KmsInternalException, e.to_string()))?
        } else {
            sig
        };
        Ok(json!({
            "KeyId": self.key_arn(&k.id),
            "Signature": B64.encode(sig.to_der().as_bytes()),
            "SigningAlgorithm": SIGNING_ALGORITHM,
        }))
    }

    /// Creates `alias/…` for a key.
    pub fn create_alias(&mut self, name: &str, target: &str) -> Result<(), KmsError> {
        let valid_chars = name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/_-".contains(c));
        if !name.starts_with("alias/") || name.len() <= 6 || name.len() > 256 || !valid_chars {
            return Err(KmsError::new(
                ErrorCode::ValidationException,
                format!("alias name {name:?} must be alias/ followed by letters, digits, / _ -"),
            ));
        }
        if name.starts_with("alias/aws/") {
            return Err(KmsError::new(
                ErrorCode::ValidationException,
                "alias/aws/ is reserved for AWS managed keys",
            ));
        }
        if target.starts_with("alias/") || target.contains(":alias/") {
            return Err(KmsError::new(
                ErrorCode::ValidationException,
                "TargetKeyId must be a key id or key ARN, not an alias",
            ));
        }
        if self.aliases.contains_key(name) {
            return Err(KmsError::new(
                ErrorCode::AlreadyExistsException,
                format!(
                    "An alias with the name {} already exists",
                    self.alias_arn(name)
                ),
            ));
        }
        let target = self.key_id(target)?;
        self.aliases.insert(
            name.to_owned(),
            AliasEntry {
                target,
                created: now_epoch(),
            },
        );
        Ok(())
    }

    /// `ListKeys`: pages of keys in id order; the marker is the last id of the previous page.
    pub fn list_keys(&self, limit: Option<u32>, marker: Option<&str>) -> Result<Value, KmsError> {
        let ids: Vec<&String> = self.keys.keys().collect();
        let (page, next) = paginate(&ids, limit, marker)?;
        let keys: Vec<Value> = page
            .iter()
            .map(|id| json!({ "KeyId": id, "KeyArn": self.key_arn(id) }))
            .collect();
        Ok(with_marker(json!({ "Keys": keys }), next))
    }

    /// `ListAliases`, optionally of one key.
    pub fn list_aliases(
        &self,
        key_id: Option<&str>,
        limit: Option<u32>,
        marker: Option<&str>,
    ) -> Result<Value, KmsError> {
        let only = key_id.map(|k| self.key_id(k)).transpose()?;
        let names: Vec<&String> = self
            .aliases
            .iter()
            .filter(|(_, a)| only.as_ref().is_none_or(|id| *id == a.target))
            .map(|(name, _)| name)
            .collect();
        let (page, next) = paginate(&names, limit, marker)?;
        let aliases: Vec<Value> = page
            .iter()
            .map(|name| {
                let a = &self.aliases[name.as_str()];
                json!({
                    "AliasName": name,
                    "AliasArn": self.alias_arn(name),
                    "TargetKeyId": a.target,
                    "CreationDate": a.created,
                    "LastUpdatedDate": a.created,
                })
            })
            .collect();
        Ok(with_marker(json!({ "Aliases": aliases }), next))
    }
}

fn paginate<'a>(
    items: &[&'a String],
    limit: Option<u32>,
    marker: Option<&str>,
) -> Result<(Vec<&'a String>, Option<String>), KmsError> {
    let limit = limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(KmsError::new(
            ErrorCode::ValidationException,
            "Limit must be between 1 and 1000",
        ));
    }
    let start = match marker {
        None => 0,
        Some(m) => items
            .iter()
            .position(|i| i.as_str() == m)
            .map(|p| p + 1)
            .ok_or_else(|| {
                KmsError::new(
                    ErrorCode::ValidationException,
                    format!("invalid Marker {m:?}"),
                )
            })?,
    };
    let page: Vec<&String> = items
        .iter()
        .skip(start)
        .take(limit as usize)
        .copied()
        .collect();
    let next = (start + page.len() < items.len())
        .then(|| page.last().map(|s| s.to_string()))
        .flatten();
    Ok((page, next))
}

fn with_marker(mut body: Value, next: Option<String>) -> Value {
    body["Truncated"] = json!(next.is_some());
    if let Some(m) = next {
        body["NextMarker"] = json!(m);
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::VerifyingKey;
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    use k256::pkcs8::DecodePublicKey;

    fn decode(v: &Value, field: &str) -> Vec<u8> {
        B64.decode(v[field].as_str().unwrap()).unwrap()
    }

    #[test]
    fn honest_signature_verifies_over_the_digest_as_given() {
        let mut ks = KeyStore::new("us-east-1", "111122223333");
        let id = ks.create("");
        let pk =
            VerifyingKey::from_public_key_der(&decode(&ks.public_key(&id).unwrap(), "PublicKey"))
                .unwrap();
        let digest = [7u8; 32];
        for (mode, high_s, ok) in [
            (SignMode::Honest, false, true),
            (SignMode::Honest, true, true),
            (SignMode::OtherDigest, false, false),
            (SignMode::OtherKey, false, false),
        ] {
            let out = ks.sign(&id, &digest, mode, high_s).unwrap();
            let sig = Signature::from_der(&decode(&out, "Signature")).unwrap();
            assert_eq!(
                sig.normalize_s().is_some(),
                high_s,
                "{mode:?} high_s={high_s}"
            );
            let sig = sig.normalize_s().unwrap_or(sig);
            assert_eq!(pk.verify_prehash(&digest, &sig).is_ok(), ok, "{mode:?}");
        }
    }

    #[test]
    fn aliases_and_arns_resolve_and_unknown_ids_are_not_found() {
        let mut ks = KeyStore::new("us-east-1", "111122223333");
        let id = ks.create("");
        ks.create_alias("alias/bridge", &id).unwrap();
        for name in [
            id.clone(),
            format!("arn:aws:kms:us-east-1:111122223333:key/{id}"),
            "alias/bridge".to_owned(),
            "arn:aws:kms:us-east-1:111122223333:alias/bridge".to_owned(),
        ] {
            assert_eq!(ks.key_id(&name).unwrap(), id, "{name}");
        }
        for name in [
            "alias/nope",
            "1234",
            "arn:aws:kms:eu-west-1:111122223333:alias/bridge",
        ] {
            assert_eq!(
                ks.key_id(name).unwrap_err().code,
                ErrorCode::NotFoundException,
                "{name}"
            );
        }
        let e = ks.create_alias("alias/bridge", &id).unwrap_err();
        assert_eq!(e.code, ErrorCode::AlreadyExistsException);
        let e = ks.create_alias("bridge", &id).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationException);
    }

    #[test]
    fn list_keys_pages_through_every_key_once() {
        let mut ks = KeyStore::new("us-east-1", "111122223333");
        let mut made: Vec<String> = (0..5).map(|_| ks.create("")).collect();
        made.sort();
        let mut seen = Vec::new();
        let mut marker: Option<String> = None;
        for _ in 0..10 {
            let page = ks.list_keys(Some(2), marker.as_deref()).unwrap();
            for k in page["Keys"].as_array().unwrap() {
                seen.push(k["KeyId"].as_str().unwrap().to_owned());
            }
            marker = page["NextMarker"].as_str().map(str::to_owned);
            if marker.is_none() {
                break;
            }
        }
        assert_eq!(seen, made);
    }

    #[test]
    fn debug_never_shows_key_material() {
        let mut ks = KeyStore::new("us-east-1", "111122223333");
        let id = ks.create("");
        let secret = hex_of(&ks.keys[&id].key.to_bytes());
        let dbg = format!("{ks:?}");
        assert!(dbg.contains("REDACTED"));
        assert!(!dbg.contains(&secret));
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
