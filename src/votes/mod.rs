//! Votes: from a request event on the source bridge to the handle calldata for the destination.
//!
//! ```text
//! source log ─decode_request─> Request ─handle_calldata(counterpart token)─> calldata
//!                                                      vote key = keccak256(calldata)
//! ```

mod calldata;
mod request;

pub use calldata::handle_calldata;
pub use request::{DecodeError, Request, decode_request};
