//! `PUT /v1/stories`: one story stored for every device of each recipient
//! (non-urgent, `story: true`), delivered as `PUT /api/v1/story` with
//! `sourceUuid` and its own `serverGuid`. Recipients without an account are
//! listed in the answer `{"unknownRecipients": [...]}` and do not fail the
//! others; at most `story_recipients_max` recipients (400 over it). A
//! recipient whose owner is busy or whose storage fails fails the request
//! (503): the client retries, and devices drop copies they already have by
//! timestamp.

use crate::accounts::{AuthedDevice, FanoutRefused};
use crate::http::request::Request;
use crate::http::response::{HttpError, Response};
use crate::protocol::items::{FanoutItem, StoryRequest, StoryResponse};
use crate::protocol::payloads::parse_json;
use crate::shard::ShardCtx;
use std::rc::Rc;

/// Stores the caller's story for each recipient.
pub async fn handle(
    ctx: &Rc<ShardCtx>,
    caller: AuthedDevice,
    mut request: Request,
) -> Result<Response, HttpError> {
    let recipients_max = ctx.config.limits.story_recipients_max;
    let story = parse_json::<StoryRequest>(&mut request.body)
        .and_then(|story| story.validate(recipients_max))
        .map_err(|error| HttpError::bad_request(error.0))?;
    let mut unknown_recipients = Vec::new();
    for recipient in &story.recipients {
        let item = FanoutItem::Story {
            content: story.content.clone(),
            timestamp: story.timestamp,
            allows_replies: story.allows_replies,
        };
        match crate::calls::fan_out(ctx, *recipient, caller, item).await? {
            Ok(()) => {}
            Err(FanoutRefused::UnknownAccount) => unknown_recipients.push(recipient.to_string()),
            Err(refused) => return Err(refused.into()),
        }
    }
    Ok(Response::json(200, &StoryResponse { unknown_recipients }))
}
