//! Delivery to connected devices.
//!
//! - [`window`]: the per-connection window of server-initiated requests
//!   awaiting the client's answer.

pub mod window;
