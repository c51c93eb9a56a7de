//! The typed messages carried on the ring mesh.
//!
//! Every message is small and owns what it carries: a handed-off socket is a
//! `std::net::TcpStream` (closing on drop, so a message lost at shutdown
//! cannot leak its fd), calls carry validated payloads, replies carry results.
//! A call's `token` is chosen by the calling shard and echoed in the reply,
//! which travels back on the ring from the callee to the caller.

use crate::protocol::payloads::Registration;
use uuid::Uuid;

/// One message between shards.
#[derive(Debug)]
pub enum ShardMsg {
    /// A connection whose identity the receiving shard owns.
    Handoff {
        /// The socket, still open.
        stream: std::net::TcpStream,
        /// Bytes already read from it (the start of the request).
        buffered: Vec<u8>,
    },
    /// A request for the owner shard to act.
    Call {
        /// The calling shard, to send the reply to.
        from: usize,
        /// Echoed in the reply.
        token: u64,
        /// What to do.
        call: Call,
    },
    /// The answer to a [`ShardMsg::Call`].
    Reply {
        /// The call's token.
        token: u64,
        /// The result.
        reply: Reply,
    },
}

/// Work only the owner shard may do.
#[derive(Debug)]
pub enum Call {
    /// Create account `uuid` with its primary device.
    CreateAccount {
        /// The new account's id (the callee is its owner).
        uuid: Uuid,
        /// Validated registration.
        registration: Registration,
    },
}

/// Results of calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The account is durable.
    AccountCreated,
    /// The owner could not do it; answer with this status and message.
    Failed {
        /// HTTP status to answer.
        status: u16,
        /// Message for the client.
        message: String,
    },
}
