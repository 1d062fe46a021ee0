//! The entities of docs/contract.md, Entities.

pub mod access;
pub mod invoice;
pub mod ledger;
pub mod payment;
pub mod plan;
pub mod refund;
pub mod subscription;
pub mod tenant;

pub use access::*;
pub use invoice::*;
pub use ledger::*;
pub use payment::*;
pub use plan::*;
pub use refund::*;
pub use subscription::*;
pub use tenant::*;
