//! Votes: from a request event on the source bridge to the handle calldata for the destination.
//!
//! ```text
//! source log ─decode_request─> Request ─handle_calldata(counterpart token, dialect)─> calldata
//!              (URI kept as bytes: TokenUri)                vote key = keccak256(calldata)
//! ```

mod calldata;
mod request;
mod uri;

pub use calldata::{handle_calldata, handle_calldata_for};
pub use request::{DecodeError, Request, decode_request};
pub use uri::{TokenUri, UriForm};
