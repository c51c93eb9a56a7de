//! The typed messages carried on the ring mesh.
//!
//! Every message is small and owns what it carries: a handed-off socket is a
//! `std::net::TcpStream` (closing on drop, so a message lost at shutdown
//! cannot leak its fd), calls carry validated payloads, replies carry typed
//! domain outcomes (never an HTTP response: the HTTP layer alone turns an
//! outcome into a status code). A call's `token` is chosen by the calling
//! shard and echoed in the reply, which travels back on the ring from the
//! callee to the caller. The callee answers a call with the outcome of the
//! same kind ([`Call::CreateAccount`] with [`Outcome::AccountCreated`], ...).

use crate::accounts::{
    AuthedDevice, CreateRefused, FanoutRefused, LinkRefused, ProvisionRefused, SendRefused,
};
use crate::directory::ClaimRefused;
use crate::protocol::discovery::IdentifierHash;
use crate::protocol::envelope::Send;
use crate::protocol::items::FanoutItem;
use crate::protocol::payloads::Registration;
use crate::push::verification::VerifyRefused;
use crate::store::accounts::PushProvider;
use uuid::Uuid;

/// One message between shards.
#[derive(Debug)]
pub enum ShardMsg {
    /// A connection whose identity the receiving shard owns.
    Handoff {
        /// The socket, still open.
        stream: std::net::TcpStream,
        /// Its TLS session when the listener has TLS (the handshake is
        /// done; `buffered` holds decrypted bytes).
        tls: Option<Box<rustls::ServerConnection>>,
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
    /// Cluster mode: change this shard's in-memory share of partition
    /// `unit` (a move); `done` gets the result.
    Unit {
        /// The partition.
        unit: usize,
        /// What to do.
        op: UnitOp,
        /// Answered once done.
        done: futures_channel::oneshot::Sender<Result<(), String>>,
    },
    /// The answer to a [`ShardMsg::Call`].
    Reply {
        /// The call's token.
        token: u64,
        /// What the owner did.
        outcome: Outcome,
    },
}

/// What a move does to a shard's in-memory share of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitOp {
    /// Close the WebSockets of its devices (1001: they reconnect).
    CloseSessions,
    /// Read its accounts, directory entries and queue lengths from the store.
    Load,
    /// Forget them (the partition moved away).
    Drop,
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
    /// Add a device to `account` if `code` is its pending link code.
    LinkDevice {
        /// The account (the callee is its owner).
        account: Uuid,
        /// The code the new device presented.
        code: String,
        /// The new device's credentials.
        registration: Registration,
    },
    /// Check, persist and deliver one send to every device of `destination`.
    SendMessage {
        /// The recipient account (the callee is its owner).
        destination: Uuid,
        /// The authenticated sender, if not sealed sender.
        sender: Option<AuthedDevice>,
        /// The `Unidentified-Access-Key` presented (sealed sender), decoded.
        access_key: Option<Vec<u8>>,
        /// The validated request.
        send: Send,
    },
    /// Give a typing indicator, receipt or story to every device of `destination`.
    FanOut {
        /// The destination account (the callee is its owner).
        destination: Uuid,
        /// The authenticated sender.
        sender: AuthedDevice,
        /// What to give.
        item: FanoutItem,
    },
    /// Hand a provisioning message to the socket waiting at `address`.
    Provision {
        /// The provisioning address (the callee is its owner).
        address: Uuid,
        /// The message, Base64-decoded.
        body: Vec<u8>,
    },
    /// Make `account` discoverable by `hash` (the callee owns the hash).
    ClaimHash {
        /// The identifier hash.
        hash: IdentifierHash,
        /// The account claiming it.
        account: Uuid,
    },
    /// Stop `account` being discoverable by `hash` (the callee owns the hash).
    ReleaseHash {
        /// The identifier hash.
        hash: IdentifierHash,
        /// The account releasing it.
        account: Uuid,
    },
    /// Which accounts hold these hashes (the callee owns every one).
    FindHashes {
        /// The hashes, in the caller's order.
        hashes: Vec<IdentifierHash>,
    },
    /// Open verification session `id` and push its challenge to `token`
    /// (the callee owns `id`).
    CreateVerification {
        /// The session id.
        id: Uuid,
        /// The provider of `token`.
        provider: PushProvider,
        /// The push token the client named.
        token: String,
    },
    /// Answer session `id`'s push challenge.
    AnswerVerification {
        /// The session id.
        id: Uuid,
        /// The token the push carried.
        challenge: String,
    },
    /// Use up verified session `id` for one registration.
    ConsumeVerification {
        /// The session id.
        id: Uuid,
    },
}

/// What the owner shard did with a [`Call`], one variant per call kind.
#[derive(Debug)]
pub enum Outcome {
    /// Answer to [`Call::CreateAccount`].
    AccountCreated(Result<(), CreateRefused>),
    /// Answer to [`Call::LinkDevice`]: the new device's id.
    DeviceLinked(Result<u32, LinkRefused>),
    /// Answer to [`Call::SendMessage`].
    MessageAccepted(Result<(), SendRefused>),
    /// Answer to [`Call::FanOut`].
    FannedOut(Result<(), FanoutRefused>),
    /// Answer to [`Call::Provision`], once the new device answered.
    Provisioned(Result<(), ProvisionRefused>),
    /// Answer to [`Call::ClaimHash`].
    HashClaimed(Result<(), ClaimRefused>),
    /// Answer to [`Call::ReleaseHash`].
    HashReleased(Result<(), ClaimRefused>),
    /// Answer to [`Call::FindHashes`]: the holder of each hash, in order.
    HashesFound(Vec<Option<Uuid>>),
    /// Answer to the verification calls.
    Verification(Result<(), VerifyRefused>),
}
