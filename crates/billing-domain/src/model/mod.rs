//! The entities of SPEC §4.

pub mod access;
pub mod invoice;
pub mod ledger;
pub mod payment;
pub mod plan;
pub mod subscription;
pub mod tenant;

pub use access::*;
pub use invoice::*;
pub use ledger::*;
pub use payment::*;
pub use plan::*;
pub use subscription::*;
pub use tenant::*;
