//! Git's credential-helper protocol, helper side.

mod context;
mod helper;

pub use context::{Context, ParseError};
pub use helper::{Error, Operation, Options, run};
