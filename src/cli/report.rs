//! What the key commands print: the same values as aligned text for people or as JSON
//! (`--json`) for scripts. The values are the signer crate's (`bridge_signer::keys`), the same
//! for every backend, so pkcs11 and aws-kms print alike.

use std::fmt::Write as _;

use alloy::primitives::Address;
#[cfg(test)]
use bridge_signer::keys::{AttrValue, KeyAttribute, KeyView};
pub use bridge_signer::keys::{KeyDetails, KeyList};

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
