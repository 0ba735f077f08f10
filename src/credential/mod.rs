//! Git's credential-helper protocol, helper side: the request and reply format, and one
//! exchange. What to answer is up to the caller.

mod context;
mod helper;

pub use context::{Context, ParseError, WriteError};
pub use helper::{Error, Operation, run};
