//! What the key commands print: the same values as aligned text for people or as JSON
//! (`--json`) for scripts. Backend-neutral, so pkcs11 and aws-kms print alike.

use std::fmt::{self, Write as _};

use alloy::primitives::Address;
use serde::Serialize;
use serde::ser::SerializeMap;

/// One key: its name(s), address and public key.
#[derive(Debug, Clone, Serialize)]
pub struct KeyView {
    /// pkcs11: `CKA_LABEL`; aws-kms: an alias, if any.
    pub label: Option<String>,
    /// pkcs11: `CKA_ID` in hex; aws-kms: the key id.
    pub id: String,
    /// Ethereum address (EIP-55 checksummed). None for a KMS key that is not enabled (KMS
    /// does not hand out its public key then).
    #[serde(serialize_with = "checksummed")]
    pub address: Option<Address>,
    /// Uncompressed SEC1 public key (`04‖X‖Y`) in hex, when known.
    #[serde(serialize_with = "hex_bytes")]
    pub public_key: Option<Vec<u8>>,
}

/// The keys of one token or account.
#[derive(Debug, Clone, Serialize)]
pub struct KeyList {
    pub backend: &'static str,
    /// Where the keys live, e.g. `token "bridge-op" (slot 3)`.
    pub location: String,
    pub keys: Vec<KeyView>,
}

/// One key with the attributes that say whether it can leave the HSM.
#[derive(Debug, Clone, Serialize)]
pub struct KeyDetails {
    pub backend: &'static str,
    pub location: String,
    #[serde(flatten)]
    pub key: KeyView,
    /// Backend attributes in a fixed order (JSON: an object keyed by name).
    #[serde(serialize_with = "attribute_map")]
    pub attributes: Vec<KeyAttribute>,
    /// True if the attributes prove the private key never was and never can be exported.
    pub protected: bool,
    /// One sentence saying why (or why not).
    pub protection: String,
}

/// One attribute, e.g. `CKA_SENSITIVE = true`.
#[derive(Debug, Clone)]
pub struct KeyAttribute {
    pub name: &'static str,
    pub value: AttrValue,
    /// What it means for the key, for people.
    pub meaning: &'static str,
}

/// An attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum AttrValue {
    Bool(bool),
    Text(String),
}

impl fmt::Display for AttrValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// The result of one key command.
#[derive(Debug)]
pub enum Report {
    Generated(KeyDetails),
    Listed(KeyList),
    Shown(KeyDetails),
}

impl Report {
    /// Pretty JSON of the result.
    pub fn json(&self) -> Result<String, serde_json::Error> {
        match self {
            Self::Generated(d) | Self::Shown(d) => serde_json::to_string_pretty(d),
            Self::Listed(l) => serde_json::to_string_pretty(l),
        }
    }

    /// Text for people.
    pub fn text(&self) -> String {
        let mut out = String::new();
        match self {
            Self::Generated(d) => {
                let _ = writeln!(
                    out,
                    "generated a new secp256k1 key pair in {} ({})",
                    d.location, d.backend
                );
                details(&mut out, d);
            }
            Self::Shown(d) => {
                let _ = writeln!(out, "key in {} ({})", d.location, d.backend);
                details(&mut out, d);
            }
            Self::Listed(l) => list(&mut out, l),
        }
        out
    }
}

fn details(out: &mut String, d: &KeyDetails) {
    let k = &d.key;
    let _ = writeln!(out, "  label:       {}", k.label.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "  id:          {}", k.id);
    let _ = writeln!(out, "  address:     {}", address_text(k.address.as_ref()));
    let public_key = k
        .public_key
        .as_deref()
        .map_or_else(|| "-".to_owned(), hex::encode);
    let _ = writeln!(out, "  public key:  {public_key}");
    let _ = writeln!(out, "  private key attributes:");
    let name_width = d.attributes.iter().map(|a| a.name.len()).max().unwrap_or(0);
    let value_width = d
        .attributes
        .iter()
        .map(|a| a.value.to_string().len())
        .max()
        .unwrap_or(0);
    for a in &d.attributes {
        let _ = writeln!(
            out,
            "    {:name_width$}  {:value_width$}  {}",
            a.name,
            a.value.to_string(),
            a.meaning
        );
    }
    let verdict = if d.protected { "yes" } else { "NO" };
    let _ = writeln!(out, "  protected:   {verdict}: {}", d.protection);
}

fn list(out: &mut String, l: &KeyList) {
    if l.keys.is_empty() {
        let _ = writeln!(
            out,
            "no secp256k1 key pairs in {} ({}); create one with `bridge-agent keys generate`",
            l.location, l.backend
        );
        return;
    }
    let _ = writeln!(
        out,
        "{} secp256k1 key pair(s) in {} ({})",
        l.keys.len(),
        l.location,
        l.backend
    );
    let label_width = l
        .keys
        .iter()
        .map(|k| k.label.as_deref().unwrap_or("-").len())
        .chain(["LABEL".len()])
        .max()
        .unwrap_or(0);
    let id_width = l
        .keys
        .iter()
        .map(|k| k.id.len())
        .chain(["ID".len()])
        .max()
        .unwrap_or(0);
    let _ = writeln!(out, "{:label_width$}  {:id_width$}  ADDRESS", "LABEL", "ID");
    for k in &l.keys {
        let _ = writeln!(
            out,
            "{:label_width$}  {:id_width$}  {}",
            k.label.as_deref().unwrap_or("-"),
            k.id,
            address_text(k.address.as_ref())
        );
    }
}

fn address_text(address: Option<&Address>) -> String {
    address.map_or_else(|| "-".to_owned(), |a| a.to_checksum(None))
}

fn checksummed<S: serde::Serializer>(address: &Option<Address>, s: S) -> Result<S::Ok, S::Error> {
    match address {
        Some(a) => s.serialize_str(&a.to_checksum(None)),
        None => s.serialize_none(),
    }
}

fn hex_bytes<S: serde::Serializer>(bytes: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match bytes {
        Some(b) => s.serialize_str(&hex::encode(b)),
        None => s.serialize_none(),
    }
}

fn attribute_map<S: serde::Serializer>(attrs: &[KeyAttribute], s: S) -> Result<S::Ok, S::Error> {
    let mut map = s.serialize_map(Some(attrs.len()))?;
    for a in attrs {
        map.serialize_entry(a.name, &a.value)?;
    }
    map.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(protected: bool) -> KeyDetails {
        KeyDetails {
            backend: "pkcs11",
            location: "token \"t\"".into(),
            key: KeyView {
                label: Some("op-1".into()),
                id: "0a1b".into(),
                address: Some(Address::repeat_byte(0xab)),
                public_key: Some(vec![4, 1, 2]),
            },
            attributes: vec![
                KeyAttribute {
                    name: "CKA_SENSITIVE",
                    value: AttrValue::Bool(true),
                    meaning: "m1",
                },
                KeyAttribute {
                    name: "CKA_EXTRACTABLE",
                    value: AttrValue::Bool(false),
                    meaning: "m2",
                },
            ],
            protected,
            protection: "because".into(),
        }
    }

    #[test]
    fn json_has_flat_key_fields_and_an_attribute_object() {
        let v: serde_json::Value =
            serde_json::from_str(&Report::Shown(sample(true)).json().unwrap()).unwrap();
        assert_eq!(v["label"], "op-1");
        assert_eq!(v["id"], "0a1b");
        assert_eq!(v["address"], Address::repeat_byte(0xab).to_checksum(None));
        assert_eq!(v["public_key"], "040102");
        assert_eq!(v["attributes"]["CKA_SENSITIVE"], true);
        assert_eq!(v["attributes"]["CKA_EXTRACTABLE"], false);
        assert_eq!(v["protected"], true);
    }

    #[test]
    fn text_aligns_attributes_and_says_no_loudly() {
        let text = Report::Shown(sample(false)).text();
        assert!(text.contains("    CKA_SENSITIVE    true   m1\n"), "{text}");
        assert!(text.contains("    CKA_EXTRACTABLE  false  m2\n"), "{text}");
        assert!(text.contains("protected:   NO: because"), "{text}");
    }
}
