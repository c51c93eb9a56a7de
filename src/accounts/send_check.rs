//! Whether a send may be accepted, judged against the destination account
//! (DESIGN.md section 4), all or nothing, in this order: sealed sender
//! presents the recipient's access key (unless the recipient allows
//! unrestricted sealed sender), or the sender is authenticated; the request
//! names exactly the recipient's devices, less the sender's own device when
//! sending to itself (mismatch); every registration id matches (stale).
//!
//! Pure: reads the account record, writes nothing.

use crate::accounts::refusal::SendRefused;
use crate::accounts::table::AuthedDevice;
use crate::protocol::envelope::Send;
use crate::store::accounts::AccountRecord;
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Checks `send` to `destination` (whose record is `account`).
pub fn check_send(
    account: &AccountRecord,
    destination: &Uuid,
    sender: Option<AuthedDevice>,
    access_key: Option<&[u8]>,
    send: &Send,
) -> Result<(), SendRefused> {
    match access_key {
        Some(key) => {
            let allowed = account.unrestricted_unidentified_access
                || account
                    .unidentified_access_key
                    .is_some_and(|expected| bool::from(expected.as_slice().ct_eq(key)));
            if !allowed {
                return Err(SendRefused::Unauthorized("unidentified access key does not match"));
            }
        }
        None if sender.is_none() => {
            return Err(SendRefused::Unauthorized("authentication required"))
        }
        None => {}
    }
    let own_device =
        sender.filter(|sender| sender.account == *destination).map(|sender| sender.device_id);
    let expected: Vec<u32> = account
        .devices
        .iter()
        .map(|device| device.id)
        .filter(|id| Some(*id) != own_device)
        .collect();
    let named: Vec<u32> = send.messages.iter().map(|message| message.device_id).collect();
    let mut missing: Vec<u32> = expected.iter().copied().filter(|id| !named.contains(id)).collect();
    let mut extra: Vec<u32> = named.iter().copied().filter(|id| !expected.contains(id)).collect();
    if !missing.is_empty() || !extra.is_empty() {
        missing.sort_unstable();
        extra.sort_unstable();
        return Err(SendRefused::MismatchedDevices { missing, extra });
    }
    let mut stale: Vec<u32> = send
        .messages
        .iter()
        .filter(|message| {
            account.devices.iter().any(|device| {
                device.id == message.device_id && device.registration_id != message.registration_id
            })
        })
        .map(|message| message.device_id)
        .collect();
    if !stale.is_empty() {
        stale.sort_unstable();
        return Err(SendRefused::StaleDevices { stale });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::table::{new_account_record, new_device_record};
    use crate::protocol::envelope::OutgoingMessage;
    use crate::protocol::payloads::Registration;

    fn registration(registration_id: u32) -> Registration {
        Registration {
            password: "pw".into(),
            registration_id,
            unidentified_access_key: Some([7; 16]),
            unrestricted_unidentified_access: false,
            name: None,
        }
    }

    fn send_to(devices: &[(u32, u32)]) -> Send {
        let messages = devices
            .iter()
            .map(|&(device_id, registration_id)| OutgoingMessage {
                kind: 1,
                device_id,
                registration_id,
                content: "AQ==".into(),
            })
            .collect();
        Send { messages, online: false, urgent: true, timestamp: 1 }
    }

    #[test]
    fn refusals_come_in_order_with_sorted_device_lists() {
        let destination = Uuid::new_v4();
        let mut account = new_account_record(&registration(11), 0);
        account.devices.push(new_device_record(&registration(22), 2, 0));
        let sender = Some(AuthedDevice { account: Uuid::new_v4(), device_id: 1 });
        let check =
            |send: &Send, sender, key| check_send(&account, &destination, sender, key, send);

        assert!(check(&send_to(&[(1, 11), (2, 22)]), sender, None).is_ok());
        assert!(matches!(
            check(&send_to(&[(1, 11)]), None, None),
            Err(SendRefused::Unauthorized(_))
        ));
        assert!(matches!(
            check(&send_to(&[(1, 11), (2, 22)]), None, Some(&[9; 16])),
            Err(SendRefused::Unauthorized(_))
        ));
        assert!(check(&send_to(&[(1, 11), (2, 22)]), None, Some(&[7; 16])).is_ok());
        match check(&send_to(&[(3, 1), (1, 11)]), sender, None) {
            Err(SendRefused::MismatchedDevices { missing, extra }) => {
                assert_eq!((missing, extra), (vec![2], vec![3]));
            }
            other => panic!("expected a mismatch, got {other:?}"),
        }
        match check(&send_to(&[(2, 23), (1, 12)]), sender, None) {
            Err(SendRefused::StaleDevices { stale }) => assert_eq!(stale, vec![1, 2]),
            other => panic!("expected stale devices, got {other:?}"),
        }
    }

    #[test]
    fn sending_to_ones_own_account_leaves_out_the_sending_device() {
        let destination = Uuid::new_v4();
        let mut account = new_account_record(&registration(11), 0);
        account.devices.push(new_device_record(&registration(22), 2, 0));
        let sender = Some(AuthedDevice { account: destination, device_id: 1 });
        assert!(check_send(&account, &destination, sender, None, &send_to(&[(2, 22)])).is_ok());
    }
}
