//! The ERC-721 token URI a request carries, kept as bytes: a URI is whatever `tokenURI`
//! returned, not text, and a vote must carry exactly the bytes every other operator votes.
//!
//! ```text
//! RequestValueTransferEncoded(…, encodingVer, encodedData)
//!   └ TokenUri (encodingVer + encodedData, verbatim)
//!       inner  = encodedData decoded once as `string`, leniently, as Kaia's node (Go) does
//!       Kaia's rule (encodingVer 2): inner ≤ 64 bytes → ""; else inner[64..] with NUL bytes
//!                                    trimmed from both ends
//!       anything else (other encodingVer, encodedData that does not decode) → ""
//! ```
//!
//! Two emissions exist for encodingVer 2:
//! - **double** (Kaia's bridge, and ours since issue 13): the bridge takes `tokenURI`'s answer
//!   as the ABI encoding of a string (offset, length, padded bytes; empty when the call fails)
//!   and emits `abi.encode(string(answer))`. Kaia's rule reads the URI back out of it.
//! - **single** (our `Bridge.sol` before issue 13): `abi.encode(uri)`; the inner bytes are the
//!   URI itself.
//!
//! Nothing in a log says which bridge emitted it, so the dialect decides ([`TokenUri::for_dialect`]):
//! - on a Kaia bridge, always Kaia's rule, byte for byte what Kaia's node votes, whatever the
//!   token answered;
//! - on ours, the inner bytes tell: empty, or a canonical ABI string encoding (word 0 is 0x20,
//!   word 1 the length, zero padding, nothing after) → double, Kaia's rule; anything else →
//!   single, the inner bytes verbatim. Today's `Bridge.sol` emits only empty or canonical inner
//!   bytes (it re-encodes the decoded answer), so Kaia's node run against our bridge votes the
//!   same URI too; an older deployment's URI would have to start with 31 NUL bytes and 0x20 to
//!   be read as double, and every agent reads it the same way regardless.
//!
//! No URI is a reason to skip a request: when Kaia's node cannot decode `encodedData` (or does
//! not know its `encodingVer`) it votes the empty URI, and so does the agent, with a warning
//! ([`TokenUri::anomaly`]).

use crate::dialect::Dialect;
use alloy::primitives::{Bytes, U256};
use alloy::sol_types::SolValue;

/// `encodingVer` whose `encodedData` carries the ERC-721 token URI.
const URI_VER: u8 = crate::contracts::ENCODING_VER_ERC721_URI;

/// The URI part of a `RequestValueTransferEncoded` log, as the log carries it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUri {
    encoding_ver: u8,
    encoded_data: Bytes,
}

/// How the inner bytes of an encodingVer-2 `encodedData` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UriForm {
    /// Empty, or the canonical ABI encoding of a string: Kaia's double encoding.
    Double,
    /// Anything else that decodes: our pre-issue-13 single encoding (on a Kaia bridge: a token
    /// whose `tokenURI` answered something other than a canonical string).
    Single,
    /// `encodedData` does not decode as a string, even leniently: the URI is empty.
    Undecodable,
    /// An `encodingVer` other than 2: Kaia's node knows no other; the URI is empty.
    UnknownVersion,
}

impl TokenUri {
    pub fn new(encoding_ver: u8, encoded_data: Bytes) -> Self {
        Self {
            encoding_ver,
            encoded_data,
        }
    }

    pub fn encoding_ver(&self) -> u8 {
        self.encoding_ver
    }

    /// The log's `encodedData`, verbatim.
    pub fn encoded_data(&self) -> &Bytes {
        &self.encoded_data
    }

    /// `encodedData` decoded once as a `string` (raw bytes, never checked as UTF-8), with the
    /// leniency of Kaia's node: `None` for another `encodingVer` or data that does not decode.
    pub fn inner(&self) -> Option<&[u8]> {
        if self.encoding_ver != URI_VER {
            return None;
        }
        lenient_string(&self.encoded_data)
    }

    pub fn form(&self) -> UriForm {
        if self.encoding_ver != URI_VER {
            return UriForm::UnknownVersion;
        }
        match self.inner() {
            None => UriForm::Undecodable,
            Some(b) if b.is_empty() || is_canonical_string(b) => UriForm::Double,
            Some(_) => UriForm::Single,
        }
    }

    /// The URI Kaia's node puts into `handleERC721Transfer`.
    pub fn kaia(&self) -> Bytes {
        self.inner().map(kaia_rule).unwrap_or_default()
    }

    /// The URI this agent votes on a bridge of `dialect` (module docs).
    pub fn for_dialect(&self, dialect: Dialect) -> Bytes {
        match (dialect, self.form(), self.inner()) {
            (Dialect::Ours, UriForm::Single, Some(b)) => Bytes::copy_from_slice(b),
            _ => self.kaia(),
        }
    }

    /// Why the URI is empty against what the request looks like, for a warning: `None` when
    /// the data reads as one of the two emissions.
    pub fn anomaly(&self) -> Option<String> {
        match self.form() {
            UriForm::Double | UriForm::Single => None,
            UriForm::Undecodable => Some(format!(
                "encodedData ({} bytes) does not decode as a string",
                self.encoded_data.len()
            )),
            UriForm::UnknownVersion => Some(format!("unknown encodingVer {}", self.encoding_ver)),
        }
    }
}

/// Kaia's rule on the inner bytes: 64 bytes or fewer → empty; else `[64..]` without NUL bytes
/// at either end.
fn kaia_rule(inner: &[u8]) -> Bytes {
    let Some(rest) = inner.get(64..) else {
        return Bytes::new();
    };
    let start = rest.iter().position(|&b| b != 0).unwrap_or(rest.len());
    let end = rest.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
    Bytes::copy_from_slice(&rest[start..end])
}

/// One dynamic `string` at the head of `data`, read as Kaia's node (Go's ABI decoder) reads it:
/// any offset whose length word and bytes fit, any padding, trailing bytes ignored.
fn lenient_string(data: &[u8]) -> Option<&[u8]> {
    let word = |at: usize| data.get(at..at + 32).map(U256::from_be_slice);
    // Offsets and lengths are bounded by `data.len()` before use, so no overflow below.
    let offset_end = word(0)?.checked_add(U256::from(32))?;
    if offset_end > U256::from(data.len()) {
        return None;
    }
    let offset_end = offset_end.to::<usize>();
    let length = word(offset_end - 32)?;
    if length > U256::from(data.len() - offset_end) {
        return None;
    }
    data.get(offset_end..offset_end + length.to::<usize>())
}

/// Whether `b` is exactly `abi.encode(string)` of some bytes.
fn is_canonical_string(b: &[u8]) -> bool {
    Bytes::abi_decode(b).is_ok_and(|s| s.abi_encode() == b)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// Kaia's rule written again from the facts file, independently of the code above: decode
    /// `encodedData` once as a string (offset, length, bytes; no UTF-8 check), ≤ 64 bytes →
    /// empty, else bytes 64.. with NULs trimmed from both ends.
    pub(in crate::votes) fn kaia_reference(encoded: &[u8]) -> Vec<u8> {
        if encoded.len() < 32 {
            return vec![];
        }
        let num = |w: &[u8]| -> Option<usize> {
            if w[..24].iter().any(|&b| b != 0) {
                return None;
            }
            usize::try_from(u64::from_be_bytes(w[24..32].try_into().unwrap())).ok()
        };
        let Some(off) = num(&encoded[..32]) else {
            return vec![];
        };
        if off.saturating_add(32) > encoded.len() {
            return vec![];
        }
        let Some(len) = num(&encoded[off..off + 32]) else {
            return vec![];
        };
        if (off + 32).saturating_add(len) > encoded.len() {
            return vec![];
        }
        let uri = &encoded[off + 32..off + 32 + len];
        if uri.len() <= 64 {
            return vec![];
        }
        let mut s = &uri[64..];
        while let [0, rest @ ..] = s {
            s = rest;
        }
        while let [rest @ .., 0] = s {
            s = rest;
        }
        s.to_vec()
    }

    /// What `tokenURI` answers (the ABI encoding of a string), as Solidity returns it.
    fn answer(uri: &[u8]) -> Vec<u8> {
        Bytes::copy_from_slice(uri).abi_encode()
    }

    /// `abi.encode(string(answer))`: Kaia's (and our current) emission.
    pub(in crate::votes) fn double(uri: &[u8]) -> Bytes {
        Bytes::from(answer(uri)).abi_encode().into()
    }

    fn v2(encoded: impl Into<Bytes>) -> TokenUri {
        TokenUri::new(2, encoded.into())
    }

    pub(in crate::votes) fn uri_of_len(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| b"abcdefghijklmnopqrstuvwxyz/:.0123456789"[i % 39])
            .collect()
    }

    /// Every length and shape the issue names, through both dialects and the reference.
    #[test]
    fn double_encoding_edges_follow_kaias_rule() {
        let mut cases: Vec<(String, Vec<u8>)> =
            [0, 31, 32, 63, 64, 65, 127, 128, 159, 255, 256, 1000]
                .into_iter()
                .map(|n| (format!("length {n}"), uri_of_len(n)))
                .collect();
        cases.push(("not UTF-8".into(), b"ipfs://\xff\xfe\xc3(/x".to_vec()));
        cases.push(("NUL first".into(), b"\0\0ipfs://a".to_vec()));
        cases.push(("NUL last".into(), b"ipfs://a\0".to_vec()));
        cases.push(("NUL both ends".into(), b"\0ipfs://a\0\0".to_vec()));
        cases.push(("NUL inside".into(), b"ipfs://a\0b".to_vec()));
        cases.push(("only NULs".into(), vec![0; 40]));
        for (name, uri) in cases {
            let t = v2(double(&uri));
            assert_eq!(t.form(), UriForm::Double, "{name}");
            assert_eq!(t.anomaly(), None, "{name}");
            let expected = kaia_reference(t.encoded_data());
            assert_eq!(t.kaia().as_ref(), &expected[..], "{name}");
            assert_eq!(
                t.for_dialect(Dialect::Kaia).as_ref(),
                &expected[..],
                "{name}"
            );
            assert_eq!(
                t.for_dialect(Dialect::Ours).as_ref(),
                &expected[..],
                "{name}"
            );
            // A canonical double encoding yields the URI itself, NULs at its ends aside.
            let trimmed: &[u8] = {
                let start = uri.iter().position(|&b| b != 0).unwrap_or(uri.len());
                let end = uri.iter().rposition(|&b| b != 0).map_or(start, |i| i + 1);
                &uri[start..end]
            };
            assert_eq!(&expected[..], trimmed, "{name}");
        }
    }

    /// A failing `tokenURI`: Kaia's bridge emits `abi.encode(string(""))`.
    #[test]
    fn failing_token_uri_is_empty() {
        let t = v2(Bytes::new().abi_encode());
        assert_eq!(t.inner(), Some(&[][..]));
        assert_eq!((t.form(), t.anomaly()), (UriForm::Double, None));
        for d in Dialect::ALL {
            assert!(t.for_dialect(d).is_empty());
        }
    }

    /// Our pre-issue-13 bridge: `abi.encode(uri)`. On ours the URI is the inner bytes; on a
    /// Kaia bridge the same bytes (a token answering non-canonical data) follow Kaia's rule.
    #[test]
    fn single_encoding_is_served_on_ours() {
        for uri in [
            uri_of_len(1),
            uri_of_len(64),
            uri_of_len(159),
            b"\xff\xfe not utf-8".to_vec(),
        ] {
            let t = v2(Bytes::from(uri.clone()).abi_encode());
            assert_eq!(t.form(), UriForm::Single);
            assert_eq!(t.for_dialect(Dialect::Ours).as_ref(), &uri[..]);
            let kaia = kaia_reference(t.encoded_data());
            assert_eq!(t.for_dialect(Dialect::Kaia).as_ref(), &kaia[..]);
        }
        // A 159-byte single encoding: Kaia's rule gives the bytes from 64 on, not the URI.
        let t = v2(Bytes::from(uri_of_len(159)).abi_encode());
        assert_eq!(
            t.for_dialect(Dialect::Kaia).as_ref(),
            &uri_of_len(159)[64..]
        );
    }

    /// Data Kaia's node decodes leniently (Go's ABI decoder) reads the same here.
    #[test]
    fn lenient_decoding_matches_kaias_node() {
        let inner = answer(&uri_of_len(100));
        // Offset 0x40 with a junk word before the string, dirty padding, trailing bytes.
        let mut e = U256::from(64).to_be_bytes::<32>().to_vec();
        e.extend_from_slice(&[7; 32]);
        e.extend_from_slice(&U256::from(inner.len()).to_be_bytes::<32>());
        e.extend_from_slice(&inner);
        e.extend_from_slice(&[9; 5]);
        let t = v2(e.clone());
        assert_eq!(t.inner(), Some(&inner[..]));
        assert_eq!(t.kaia().as_ref(), &kaia_reference(&e)[..]);
        assert_eq!(t.kaia().as_ref(), &uri_of_len(100)[..]);
        // An offset that is not a multiple of 32 is read too: offset 1 makes the length word
        // bytes 1..33, i.e. 0x01 (the offset's last byte) then 0x04: 260.
        let mut e = U256::from(1).to_be_bytes::<32>().to_vec();
        e.push(4);
        e.extend_from_slice(&uri_of_len(260));
        assert_eq!(v2(e.clone()).inner(), Some(&uri_of_len(260)[..]));
        assert_eq!(v2(e.clone()).kaia().as_ref(), &kaia_reference(&e)[..]);
        assert_eq!(v2(e).kaia().as_ref(), &uri_of_len(260)[64..]);
    }

    /// Undecodable data and unknown versions: Kaia's node votes the empty URI; so does this.
    #[test]
    fn what_kaias_node_cannot_read_is_the_empty_uri() {
        let huge = U256::MAX.to_be_bytes::<32>().to_vec();
        let mut long_len = U256::from(32).to_be_bytes::<32>().to_vec();
        long_len.extend_from_slice(&U256::from(1000).to_be_bytes::<32>());
        long_len.extend_from_slice(&[1; 64]);
        let mut max_len = U256::from(32).to_be_bytes::<32>().to_vec();
        max_len.extend_from_slice(&U256::MAX.to_be_bytes::<32>());
        for (name, e) in [
            ("empty", vec![]),
            ("31 bytes", vec![0; 31]),
            ("offset past the end", huge),
            (
                "offset word only",
                U256::from(32).to_be_bytes::<32>().to_vec(),
            ),
            ("length past the end", long_len),
            ("length 2^256-1", max_len),
        ] {
            let t = v2(e.clone());
            assert_eq!(t.form(), UriForm::Undecodable, "{name}");
            assert!(t.anomaly().unwrap().contains("does not decode"), "{name}");
            assert!(kaia_reference(&e).is_empty(), "{name}");
            for d in Dialect::ALL {
                assert!(t.for_dialect(d).is_empty(), "{name}");
            }
        }
        let t = TokenUri::new(3, double(b"ipfs://x"));
        assert_eq!(t.form(), UriForm::UnknownVersion);
        assert_eq!(t.anomaly().unwrap(), "unknown encodingVer 3");
        assert!(t.for_dialect(Dialect::Ours).is_empty() && t.kaia().is_empty());
    }
}
