//! Every frame of the WebSocket protocol the server writes, built here and
//! nowhere else in the server, and the typed `data` a client may publish
//! on each kind of channel (contract v1.3: exactly the listed fields; a
//! stroke is checked like a REST stroke, every human text is masked).
//!
//! Frames from a channel are serialised from `json!` objects, whose keys
//! come out sorted: each (`message`, `subscribed`, and the broker's
//! `presence`) therefore starts `{"channel":"NAME"`, which is how a
//! connection drops what it still holds of a channel it has left
//! ([`channel_of`]). The connection's own answers (`error`,
//! `unsubscribed`) put `op` first, so they always go out.

use serde::Deserialize;
use serde_json::{Value, json};
use storybook_broadcast::{Frame, Member, Subscribed};
use storybook_canvas::StrokeDraft;
use storybook_store::Notification;

fn frame(value: Value) -> Frame {
    Frame::from(value.to_string())
}

/// A frame with `op` first: the connection's own answers, which must not
/// look like a frame about a channel to [`channel_of`].
fn answer(op: &str, fields: &[(&str, Value)]) -> Frame {
    let mut text = format!("{{\"op\":{}", Value::from(op));
    for (key, value) in fields {
        text.push_str(&format!(",{}:{value}", Value::from(*key)));
    }
    text.push('}');
    Frame::from(text)
}

pub fn error(code: &str, message: &str, channel: Option<&str>) -> Frame {
    let mut fields = vec![("code", json!(code)), ("message", json!(message))];
    if let Some(channel) = channel {
        fields.push(("channel", json!(channel)));
    }
    answer("error", &fields)
}

pub fn pong() -> Frame {
    frame(json!({"op": "pong"}))
}

pub fn subscribed(channel: &str, state: &Subscribed) -> Frame {
    frame(json!({
        "op": "subscribed", "channel": channel, "offset": state.offset, "epoch": state.epoch,
        "presence": state.presence, "presence_count": state.presence_count,
        "recovered": state.recovered,
    }))
}

/// Why a connection lost a channel: `forbidden` (no longer allowed) or
/// `not_found` (the drawing or story is gone, or hidden).
pub fn unsubscribed(channel: &str, reason: &str) -> Frame {
    answer(
        "unsubscribed",
        &[("channel", json!(channel)), ("reason", json!(reason))],
    )
}

/// A message kept in history, as text (the broker stores it).
pub fn message(channel: &str, offset: u64, from: &Member, data: &Value) -> String {
    json!({"op": "message", "channel": channel, "offset": offset, "from": from, "data": data})
        .to_string()
}

/// A cursor: never in history.
pub fn cursor(channel: &str, offset: u64, from: &Member, data: &Value) -> Frame {
    frame(json!({
        "op": "message", "channel": channel, "offset": offset, "volatile": true,
        "from": from, "data": data,
    }))
}

pub fn notification(notification: &Notification) -> Frame {
    frame(json!({"op": "notification", "notification": notification}))
}

/// A control frame for a connection's own task (see
/// [`storybook_broadcast::CONTROL`]): check `channel` again.
pub fn recheck(channel: &str) -> Frame {
    let mut bytes = Vec::with_capacity(channel.len() + 1);
    bytes.push(storybook_broadcast::CONTROL);
    bytes.extend_from_slice(channel.as_bytes());
    Frame::from(bytes)
}

/// The channel a frame from a channel is about (the connection's own
/// answers, built with `op` first, are about none).
pub fn channel_of(frame: &[u8]) -> Option<&str> {
    let rest = frame.strip_prefix(b"{\"channel\":\"")?;
    let end = rest.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// What may be published on a `drawing:` channel.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum DrawingData {
    Stroke { stroke: StrokeDraft },
    Undo { stroke_id: String },
    Cursor { x: f64, y: f64 },
    Chat { text: String },
}

/// What may be published on a `story:` channel.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum StoryData {
    Cursor {
        x: f64,
        y: f64,
        #[serde(default)]
        page: Option<u32>,
    },
    Chat {
        text: String,
    },
}

/// Why published `data` was refused, in the words of an `error` frame.
pub fn data_problem(error: &serde_json::Error) -> String {
    // serde's message names the unknown or missing field or the type.
    let text = error.to_string();
    match text.find(" at line ") {
        Some(end) => text[..end].to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_is_exactly_one_of_the_channel_types() {
        let drawing = |v: Value| serde_json::from_value::<DrawingData>(v);
        assert!(matches!(
            drawing(json!({"type": "cursor", "x": 1, "y": 2.5})),
            Ok(DrawingData::Cursor { .. })
        ));
        assert!(matches!(
            drawing(json!({"type": "chat", "text": "hi"})),
            Ok(DrawingData::Chat { .. })
        ));
        for bad in [
            json!({"type": "sticker", "label": "x"}),
            json!({"type": "cursor", "x": 1, "y": 1, "note": "extra"}),
            json!({"type": "cursor", "x": 1}),
            json!({"type": "chat", "text": 5}),
            json!({"x": 1, "y": 1}),
        ] {
            assert!(drawing(bad.clone()).is_err(), "{bad}");
        }
        let story = |v: Value| serde_json::from_value::<StoryData>(v);
        assert!(matches!(
            story(json!({"type": "cursor", "x": 1, "y": 2, "page": 3})),
            Ok(StoryData::Cursor { page: Some(3), .. })
        ));
        assert!(story(json!({"type": "undo", "stroke_id": "a"})).is_err());
    }

    #[test]
    fn frames_about_a_channel_name_it_first() {
        let member = Member {
            id: 1,
            username: "a".into(),
            display_name: "A".into(),
        };
        let text = message(
            "drawing:7",
            3,
            &member,
            &json!({"type": "chat", "text": "x"}),
        );
        assert_eq!(channel_of(text.as_bytes()), Some("drawing:7"));
        assert_eq!(channel_of(&unsubscribed("story:2", "forbidden")), None);
        assert_eq!(channel_of(&error("forbidden", "no", Some("story:2"))), None);
        let parsed: Value = serde_json::from_slice(&error("forbidden", "a \"b\"", None)).unwrap();
        assert_eq!(
            parsed,
            json!({"op": "error", "code": "forbidden", "message": "a \"b\""})
        );
        assert_eq!(channel_of(&pong()), None);
    }
}
