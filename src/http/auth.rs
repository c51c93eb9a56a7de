//! Basic credentials: `Authorization: Basic base64(login:password)` or the
//! `login` and `password` query parameters of the WebSocket upgrade.
//!
//! A login is `uuid` (device 1) or `uuid.deviceId`, as Signal's clients send.
//! Invariant: anything malformed yields `None` here and so a 401 upstream,
//! the same answer as a wrong password, so the shape of the failure tells a
//! caller nothing about which accounts exist. Failed logins are rate
//! limited per claimed account and per source address (429 with
//! `Retry-After`, see [`authenticate`]).

use crate::accounts::AuthedDevice;
use crate::http::response::{HttpError, Response};
use crate::metrics::ShardMetrics;
use crate::protocol::base64;
use crate::ratelimit::Limited;
use crate::shard::ShardCtx;
use std::net::IpAddr;
use uuid::Uuid;

/// Who a request claims to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The account.
    pub account: Uuid,
    /// The device (1 when the login named none).
    pub device_id: u32,
    /// The device's secret.
    pub password: String,
}

/// Parses `uuid` or `uuid.deviceId` (device ids 1 to 127).
pub fn parse_login(login: &str) -> Option<(Uuid, u32)> {
    let (account, device) = match login.split_once('.') {
        Some((account, device)) => (account, device.parse::<u32>().ok()?),
        None => (login, 1),
    };
    if !(1..=127).contains(&device) {
        return None;
    }
    Some((Uuid::try_parse(account).ok()?, device))
}

/// Credentials from an `Authorization` header value.
pub fn from_basic_header(value: &str) -> Option<Credentials> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::decode(encoded.trim().as_bytes()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (login, password) = text.split_once(':')?;
    let (account, device_id) = parse_login(login)?;
    Some(Credentials { account, device_id, password: password.to_string() })
}

/// Credentials from a query string's `login` and `password`.
pub fn from_query(query: &str) -> Option<Credentials> {
    let mut login = None;
    let mut password = None;
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "login" => login = Some(value.into_owned()),
            "password" => password = Some(value.into_owned()),
            _ => {}
        }
    }
    let (account, device_id) = parse_login(&login?)?;
    Some(Credentials { account, device_id, password: password? })
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRefused {
    /// No credentials, malformed ones, or wrong ones: 401.
    Invalid,
    /// Too many failed logins for the account or from the address: 429,
    /// and the password was not checked.
    Limited(Limited),
}

impl AuthRefused {
    /// The answer to send.
    pub fn response(self) -> Response {
        match self {
            AuthRefused::Invalid => Response::error(401, "invalid credentials"),
            AuthRefused::Limited(limited) => Response::from(HttpError::too_many_requests(
                "too many failed logins; retry later",
                limited.retry_after_s(),
            )),
        }
    }
}

/// Checks `credentials` from `peer` on this (the owner) shard.
///
/// Brute force: while the claimed account's or the address's failure
/// bucket is spent, the login is refused with [`AuthRefused::Limited`]
/// before any password is checked (so guessing on learns nothing); a failed
/// check takes one permit from both. A valid login pays only the two
/// lookups: no delay, nothing taken.
pub fn authenticate(
    ctx: &ShardCtx,
    credentials: Option<Credentials>,
    peer: Option<IpAddr>,
) -> Result<AuthedDevice, AuthRefused> {
    let now_ms = ctx.clock.now_ms();
    let limiters = &ctx.limiters;
    let account = credentials.as_ref().map(|credentials| credentials.account);
    let spent = peer
        .map_or(Ok(()), |ip| limiters.auth_failures_per_ip.borrow().peek(&ip, 1, now_ms))
        .and_then(|()| {
            let per_account = limiters.auth_failures_per_account.borrow();
            account.map_or(Ok(()), |account| per_account.peek(&account, 1, now_ms))
        });
    if let Err(limited) = spent {
        ShardMetrics::inc(&ctx.stats().rate_limited_total);
        return Err(AuthRefused::Limited(limited));
    }
    let device = credentials.and_then(|credentials| {
        let (account, device_id) = (&credentials.account, credentials.device_id);
        ctx.accounts.authenticate(account, device_id, &credentials.password, now_ms).ok()
    });
    device.ok_or_else(|| {
        ShardMetrics::inc(&ctx.stats().auth_failures_total);
        // A full key table only stops the tracking of new keys (see ratelimit).
        if let Some(ip) = peer {
            let _ = limiters.auth_failures_per_ip.borrow_mut().take(&ip, 1, now_ms);
        }
        if let Some(account) = account {
            let _ = limiters.auth_failures_per_account.borrow_mut().take(&account, 1, now_ms);
        }
        AuthRefused::Invalid
    })
}

/// The account a request claims, from either place, without checking the
/// password: used to route the connection to the owner shard first.
pub fn claimed_account(authorization: Option<&str>, query: &str) -> Option<Uuid> {
    authorization
        .and_then(from_basic_header)
        .or_else(|| from_query(query))
        .map(|credentials| credentials.account)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "8c4a1b0e-5b7d-4c1e-9f3a-2d6e7f8a9b0c";

    #[test]
    fn logins_with_and_without_device() {
        let uuid = Uuid::parse_str(ID).unwrap();
        assert_eq!(parse_login(ID), Some((uuid, 1)));
        assert_eq!(parse_login(&format!("{ID}.3")), Some((uuid, 3)));
        for bad in [
            "",
            "nope",
            &format!("{ID}.0"),
            &format!("{ID}.128"),
            &format!("{ID}.x"),
            &format!("{ID}."),
        ] {
            assert_eq!(parse_login(bad), None, "{bad}");
        }
    }

    #[test]
    fn basic_header_decodes() {
        let header = format!("Basic {}", base64::encode(format!("{ID}.2:pa:ss").as_bytes()));
        let credentials = from_basic_header(&header).unwrap();
        assert_eq!(credentials.device_id, 2);
        assert_eq!(credentials.password, "pa:ss");
        for bad in [
            "",
            "Basic",
            "Bearer abc",
            "Basic !!!",
            &format!("Basic {}", base64::encode(b"nocolon")),
        ] {
            assert!(from_basic_header(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn query_decodes_percent_escapes() {
        let credentials = from_query(&format!("login={ID}&password=a%2Bb%2F%3D")).unwrap();
        assert_eq!(credentials.password, "a+b/=");
        assert!(from_query(&format!("login={ID}")).is_none());
        assert!(from_query("password=x").is_none());
    }
}
