//! Generating secp256k1 key pairs inside the token. There is deliberately no function that
//! imports a raw private key: a key that ever existed outside an HSM is not an HSM key.

use cryptoki::mechanism::Mechanism;
use cryptoki::object::Attribute;
use cryptoki::session::Session;

use super::config::KeySelector;
use super::error::Pkcs11Error;
use super::keys::{self, KeyInfo, SECP256K1_PARAMS};
use super::token::TokenHandle;

/// Generates a key pair labelled `label` (and `id`, or 8 random bytes from the token) with
/// `CKA_TOKEN`, `CKA_PRIVATE`, `CKA_SENSITIVE` and not `CKA_EXTRACTABLE`, then checks the token
/// honoured that; if not, destroys it.
pub(crate) fn generate(
    session: &Session,
    label: &str,
    id: Option<Vec<u8>>,
    token: &TokenHandle,
) -> Result<KeyInfo, Pkcs11Error> {
    match keys::find_private_key(session, &KeySelector::label(label), token) {
        Err(Pkcs11Error::KeyNotFound { .. }) => {}
        Ok(_) | Err(Pkcs11Error::AmbiguousKey { .. }) => {
            return Err(Pkcs11Error::KeyExists {
                label: label.into(),
                token: token.label().into(),
            });
        }
        Err(e) => return Err(e),
    }
    let id = match id.filter(|i| !i.is_empty()) {
        Some(id) => id,
        None => session.generate_random_vec(8).map_err(|e| token.err(e))?,
    };
    let public_template = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::EcParams(SECP256K1_PARAMS.to_vec()),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let private_template = [
        Attribute::Token(true),
        Attribute::Private(true),
        Attribute::Sensitive(true),
        Attribute::Extractable(false),
        Attribute::Sign(true),
        Attribute::Label(label.as_bytes().to_vec()),
        Attribute::Id(id.clone()),
    ];
    let (public, private) = session
        .generate_key_pair(
            &Mechanism::EccKeyPairGen,
            &public_template,
            &private_template,
        )
        .map_err(|e| token.err(e))?;
    let selector = KeySelector::new(Some(label.into()), Some(id)).map_err(|reason| {
        Pkcs11Error::WrongKeyType {
            selector: label.into(),
            reason,
        }
    })?;
    let attrs = keys::attributes(session, &selector, token)?;
    if !attrs.is_protected() || !attrs.token || !attrs.private {
        let _ = session.destroy_object(private);
        let _ = session.destroy_object(public);
        return Err(Pkcs11Error::KeyNotProtected {
            label: label.into(),
        });
    }
    tracing::info!(
        token = token.label(),
        label,
        address = %attrs.info.address,
        "generated secp256k1 key pair inside the token"
    );
    Ok(attrs.info)
}
