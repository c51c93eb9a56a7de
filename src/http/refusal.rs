//! The one place domain outcomes become HTTP statuses and bodies
//! (DESIGN.md section 2: 401 bad credentials, 403 not allowed, 404 unknown
//! account, 409/410 device mismatch, 409 identifier taken, 411 device limit,
//! 503 busy or storage).
//!
//! Every owner-side refusal reaches the client through these conversions,
//! whether the operation ran on this shard or came back over a ring.

use crate::accounts::{
    CreateRefused, FanoutRefused, LinkRefused, ProvisionRefused, SendRefused, TokenRefused,
    UnlinkRefused,
};
use crate::directory::ClaimRefused;
use crate::discovery::DiscoverRefused;
use crate::http::response::HttpError;
use crate::protocol::envelope::{MismatchedDevices, StaleDevices};
use crate::shard::mesh::CallError;
use crate::store::StoreError;

/// `Retry-After` of a 503 for a partition whose node did not answer: about
/// the time a restarted node takes to serve again.
pub const NODE_UNAVAILABLE_RETRY_AFTER_S: u64 = 5;

impl From<CallError> for HttpError {
    fn from(error: CallError) -> Self {
        match error {
            CallError::Busy(_) => HttpError::unavailable("server busy, retry"),
            CallError::NoAnswer(_) => HttpError::unavailable("shard unavailable"),
            CallError::NodeUnavailable => HttpError {
                retry_after_s: Some(NODE_UNAVAILABLE_RETRY_AFTER_S),
                ..HttpError::unavailable("the account's node is unavailable, retry")
            },
        }
    }
}

impl From<StoreError> for HttpError {
    fn from(error: StoreError) -> Self {
        HttpError::unavailable(error.to_string())
    }
}

impl From<CreateRefused> for HttpError {
    fn from(refused: CreateRefused) -> Self {
        match refused {
            CreateRefused::Exists => HttpError::new(409, "account exists"),
            CreateRefused::Storage(_) => HttpError::unavailable("storage unavailable"),
        }
    }
}

impl From<LinkRefused> for HttpError {
    fn from(refused: LinkRefused) -> Self {
        let message = refused.to_string();
        match refused {
            LinkRefused::NotPrimary | LinkRefused::InvalidCode => HttpError::forbidden(message),
            LinkRefused::Busy => HttpError::new(409, message),
            LinkRefused::TooManyDevices => HttpError::new(411, message),
            LinkRefused::Storage(_) => HttpError::unavailable("storage unavailable"),
        }
    }
}

impl From<SendRefused> for HttpError {
    fn from(refused: SendRefused) -> Self {
        match refused {
            SendRefused::UnknownAccount => HttpError::not_found("no such account"),
            SendRefused::Unauthorized(reason) => HttpError::unauthorized(reason),
            SendRefused::MismatchedDevices { missing, extra } => {
                let body = MismatchedDevices { missing_devices: missing, extra_devices: extra };
                HttpError::with_body(409, "devices do not match", &body)
            }
            SendRefused::StaleDevices { stale } => {
                HttpError::with_body(410, "stale devices", &StaleDevices { stale_devices: stale })
            }
            SendRefused::Storage(error) if error.is_disk_full() => {
                HttpError::unavailable("storage is full: the message was not stored; retry later")
            }
            SendRefused::Storage(_) => HttpError::unavailable("storage unavailable, retry"),
        }
    }
}

impl From<FanoutRefused> for HttpError {
    fn from(refused: FanoutRefused) -> Self {
        match refused {
            FanoutRefused::UnknownAccount => HttpError::not_found("no such account"),
            FanoutRefused::Storage(_) => HttpError::unavailable("storage unavailable, retry"),
        }
    }
}

impl From<UnlinkRefused> for HttpError {
    fn from(refused: UnlinkRefused) -> Self {
        let message = refused.to_string();
        match refused {
            UnlinkRefused::NotAllowed | UnlinkRefused::Primary => HttpError::forbidden(message),
            UnlinkRefused::NoSuchDevice => HttpError::not_found(message),
            UnlinkRefused::Busy => HttpError::new(409, message),
            UnlinkRefused::Storage(_) => HttpError::unavailable("storage unavailable"),
        }
    }
}

impl From<ProvisionRefused> for HttpError {
    fn from(refused: ProvisionRefused) -> Self {
        match refused {
            ProvisionRefused::NoSuchAddress => HttpError::not_found(refused.to_string()),
        }
    }
}

impl From<TokenRefused> for HttpError {
    fn from(refused: TokenRefused) -> Self {
        let message = refused.to_string();
        match refused {
            TokenRefused::NoSuchDevice => HttpError::unauthorized(message),
            TokenRefused::Busy => HttpError::new(409, message),
            TokenRefused::Storage(_) => HttpError::unavailable("storage unavailable, retry"),
        }
    }
}

impl From<DiscoverRefused> for HttpError {
    fn from(refused: DiscoverRefused) -> Self {
        let message = refused.to_string();
        match refused {
            DiscoverRefused::Claim(ClaimRefused::Taken) => HttpError::new(409, message),
            DiscoverRefused::Claim(ClaimRefused::Busy) | DiscoverRefused::Busy => {
                HttpError::new(409, message)
            }
            DiscoverRefused::UnknownAccount => HttpError::unauthorized(message),
            DiscoverRefused::Claim(ClaimRefused::Storage(_)) | DiscoverRefused::Storage(_) => {
                HttpError::unavailable("storage unavailable, retry")
            }
            DiscoverRefused::Call(error) => error.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::response::Response;

    #[test]
    fn device_mismatches_carry_their_contract_bodies() {
        let refused = SendRefused::MismatchedDevices { missing: vec![2], extra: vec![3] };
        let response = Response::from(HttpError::from(refused));
        assert_eq!(response.status, 409);
        assert_eq!(response.body, br#"{"missingDevices":[2],"extraDevices":[3]}"#);
        let response =
            Response::from(HttpError::from(SendRefused::StaleDevices { stale: vec![1] }));
        assert_eq!((response.status, response.body), (410, br#"{"staleDevices":[1]}"#.to_vec()));
    }

    #[test]
    fn refusals_map_to_their_statuses() {
        let status = |error: HttpError| error.status;
        assert_eq!(status(SendRefused::UnknownAccount.into()), 404);
        assert_eq!(status(SendRefused::Unauthorized("no").into()), 401);
        assert_eq!(status(LinkRefused::NotPrimary.into()), 403);
        assert_eq!(status(LinkRefused::InvalidCode.into()), 403);
        assert_eq!(status(LinkRefused::Busy.into()), 409);
        assert_eq!(status(LinkRefused::TooManyDevices.into()), 411);
        assert_eq!(status(CreateRefused::Exists.into()), 409);
        assert_eq!(status(CallError::Busy(1).into()), 503);
        assert_eq!(status(CallError::NoAnswer(1).into()), 503);
        let node_down = HttpError::from(CallError::NodeUnavailable);
        assert_eq!((node_down.status, node_down.retry_after_s), (503, Some(5)));
        assert_eq!(status(DiscoverRefused::Claim(ClaimRefused::Taken).into()), 409);
        assert_eq!(status(DiscoverRefused::Busy.into()), 409);
    }
}
