//! Finding key pairs on a token and reading what proves how they are protected. Blocking.

use alloy_primitives::Address;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use k256::ecdsa::VerifyingKey;

use super::config::KeySelector;
use super::error::Pkcs11Error;
use super::token::TokenHandle;
use crate::signature::{address_of, parse_ec_point};

/// DER of the secp256k1 OID 1.3.132.0.10, as `CKA_EC_PARAMS` holds it.
pub(crate) const SECP256K1_PARAMS: [u8; 7] = [0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x0a];

/// A secp256k1 key pair on the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// `CKA_LABEL`.
    pub label: String,
    /// `CKA_ID`.
    pub id: Vec<u8>,
    /// Ethereum address of the public key.
    pub address: Address,
    /// Uncompressed SEC1 public key (`04‖X‖Y`).
    pub public_key: Vec<u8>,
}

/// A key pair plus the attributes of its private half that show it cannot leave the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAttributes {
    /// Label, id, address, public key.
    pub info: KeyInfo,
    /// `CKA_TOKEN`: persistent on the token.
    pub token: bool,
    /// `CKA_PRIVATE`: needs login.
    pub private: bool,
    /// `CKA_SENSITIVE`.
    pub sensitive: bool,
    /// `CKA_ALWAYS_SENSITIVE`.
    pub always_sensitive: bool,
    /// `CKA_EXTRACTABLE`.
    pub extractable: bool,
    /// `CKA_NEVER_EXTRACTABLE`.
    pub never_extractable: bool,
    /// `CKA_SIGN`.
    pub sign: bool,
}

impl KeyAttributes {
    /// True if the private key is, and always was, sensitive and non-extractable.
    pub fn is_protected(&self) -> bool {
        self.sensitive && self.always_sensitive && !self.extractable && self.never_extractable
    }
}

/// The one private EC key matching `selector`.
pub(crate) fn find_private_key(
    session: &Session,
    selector: &KeySelector,
    token: &TokenHandle,
) -> Result<ObjectHandle, Pkcs11Error> {
    let mut template = vec![
        Attribute::Class(ObjectClass::PRIVATE_KEY),
        Attribute::KeyType(KeyType::EC),
    ];
    if let Some(label) = selector.label_ref() {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = selector.id_ref() {
        template.push(Attribute::Id(id.to_vec()));
    }
    let found = session.find_objects(&template).map_err(|e| token.err(e))?;
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(Pkcs11Error::KeyNotFound {
            selector: selector.to_string(),
            token: token.label().into(),
        }),
        many => Err(Pkcs11Error::AmbiguousKey {
            selector: selector.to_string(),
            token: token.label().into(),
            count: many.len(),
        }),
    }
}

/// Label, id and public key of a private key, the public key read from its public twin
/// (same `CKA_ID`, or same label if the id is empty).
pub(crate) fn key_info(
    session: &Session,
    private: ObjectHandle,
    token: &TokenHandle,
) -> Result<(KeyInfo, VerifyingKey), Pkcs11Error> {
    let (label, id) = label_and_id(session, private, token)?;
    let selector = KeySelector::new(Some(label.clone()), Some(id.clone())).map_err(|reason| {
        Pkcs11Error::WrongKeyType {
            selector: "(unlabelled key without id)".into(),
            reason,
        }
    })?;
    let mut template = vec![Attribute::Class(ObjectClass::PUBLIC_KEY)];
    if id.is_empty() {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    } else {
        template.push(Attribute::Id(id.clone()));
    }
    let public = match session
        .find_objects(&template)
        .map_err(|e| token.err(e))?
        .as_slice()
    {
        [one] => *one,
        other => {
            return Err(Pkcs11Error::WrongKeyType {
                selector: selector.to_string(),
                reason: format!(
                    "expected exactly one public key with the same id/label, found {}",
                    other.len()
                ),
            });
        }
    };
    let attrs = session
        .get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
        .map_err(|e| token.err(e))?;
    let (mut params, mut point) = (None, None);
    for a in attrs {
        match a {
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            _ => {}
        }
    }
    if params.as_deref() != Some(&SECP256K1_PARAMS[..]) {
        return Err(Pkcs11Error::WrongKeyType {
            selector: selector.to_string(),
            reason: "CKA_EC_PARAMS is not secp256k1 (1.3.132.0.10)".into(),
        });
    }
    let point = point.ok_or_else(|| Pkcs11Error::WrongKeyType {
        selector: selector.to_string(),
        reason: "public key has no CKA_EC_POINT".into(),
    })?;
    let key = parse_ec_point(&point).map_err(|e| Pkcs11Error::WrongKeyType {
        selector: selector.to_string(),
        reason: e.to_string(),
    })?;
    let info = KeyInfo {
        label,
        id,
        address: address_of(&key),
        public_key: key.to_encoded_point(false).as_bytes().to_vec(),
    };
    Ok((info, key))
}

fn label_and_id(
    session: &Session,
    object: ObjectHandle,
    token: &TokenHandle,
) -> Result<(String, Vec<u8>), Pkcs11Error> {
    let attrs = session
        .get_attributes(object, &[AttributeType::Label, AttributeType::Id])
        .map_err(|e| token.err(e))?;
    let (mut label, mut id) = (String::new(), Vec::new());
    for a in attrs {
        match a {
            Attribute::Label(l) => label = String::from_utf8_lossy(&l).into_owned(),
            Attribute::Id(i) => id = i,
            _ => {}
        }
    }
    Ok((label, id))
}

/// Every secp256k1 key pair on the token. Keys on other curves are skipped.
pub(crate) fn list(session: &Session, token: &TokenHandle) -> Result<Vec<KeyInfo>, Pkcs11Error> {
    let privates = session
        .find_objects(&[
            Attribute::Class(ObjectClass::PRIVATE_KEY),
            Attribute::KeyType(KeyType::EC),
        ])
        .map_err(|e| token.err(e))?;
    let mut out = Vec::new();
    for handle in privates {
        match key_info(session, handle, token) {
            Ok((info, _)) => out.push(info),
            Err(Pkcs11Error::WrongKeyType { selector, reason }) => {
                tracing::debug!(%selector, %reason, "skipping key that is not a secp256k1 pair");
            }
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.label.cmp(&b.label).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// The attributes of the key selected by `selector`.
pub(crate) fn attributes(
    session: &Session,
    selector: &KeySelector,
    token: &TokenHandle,
) -> Result<KeyAttributes, Pkcs11Error> {
    let private = find_private_key(session, selector, token)?;
    let (info, _) = key_info(session, private, token)?;
    let attrs = session
        .get_attributes(
            private,
            &[
                AttributeType::Token,
                AttributeType::Private,
                AttributeType::Sensitive,
                AttributeType::AlwaysSensitive,
                AttributeType::Extractable,
                AttributeType::NeverExtractable,
                AttributeType::Sign,
            ],
        )
        .map_err(|e| token.err(e))?;
    let mut out = KeyAttributes {
        info,
        token: false,
        private: false,
        sensitive: false,
        always_sensitive: false,
        // Unknown counts as the unsafe answer.
        extractable: true,
        never_extractable: false,
        sign: false,
    };
    for a in attrs {
        match a {
            Attribute::Token(v) => out.token = v,
            Attribute::Private(v) => out.private = v,
            Attribute::Sensitive(v) => out.sensitive = v,
            Attribute::AlwaysSensitive(v) => out.always_sensitive = v,
            Attribute::Extractable(v) => out.extractable = v,
            Attribute::NeverExtractable(v) => out.never_extractable = v,
            Attribute::Sign(v) => out.sign = v,
            _ => {}
        }
    }
    Ok(out)
}
