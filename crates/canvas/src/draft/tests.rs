//! The drafts' rules and readers, on text and on values.

use serde::de::DeserializeSeed;

use super::*;
use crate::MAX_STROKES;
use serde_json::json;

/// A draft read from text and one made from the same JSON value are
/// the same draft, so both are judged alike.
#[test]
fn reading_text_and_converting_a_value_agree() {
    for value in [
        json!({"id": "s1", "tool": "pen", "color": "#FF0000", "width": 4, "points": [[1, 2], [3.5, 4]], "extra": {"a": [1]}}),
        json!({"id": "s2", "points": [[1, 2, 3], "x", [1, 1]]}),
        json!({"points": {"x": 1}}),
        json!([1, 2]),
        json!("stroke"),
        json!({}),
    ] {
        let read: StrokeDraft = serde_json::from_str(&value.to_string()).unwrap();
        assert_eq!(read, StrokeDraft::from_value(&value), "{value}");
    }
}

#[test]
fn check_keeps_the_contract_rules() {
    let mut problems = Vec::new();
    let good = StrokeDraft::from_value(
        &json!({"id": "s1", "tool": "pen", "color": "#FF0000", "width": 4, "points": [[1, 2], [3.5, 4]]}),
    );
    let stroke = check(&good, 10, 10, "strokes.0", &mut problems).unwrap();
    assert_eq!((stroke.color.as_str(), stroke.points.len()), ("#ff0000", 2));
    let off_canvas = StrokeDraft::from_value(
        &json!({"id": "s1", "tool": "pen", "color": "#000000", "width": 4, "points": [[1, 20]]}),
    );
    assert!(check(&off_canvas, 10, 10, "strokes.1", &mut problems).is_none());
    let too_many: Vec<[u32; 2]> = vec![[1, 1]; MAX_POINTS + 1];
    let long = StrokeDraft::from_value(
        &json!({"id": "s1", "tool": "pen", "color": "#000000", "width": 4, "points": too_many}),
    );
    assert!(check(&long, 10, 10, "strokes.2", &mut problems).is_none());
    assert!(
        check(
            &StrokeDraft::NotAnObject,
            10,
            10,
            "strokes.3",
            &mut problems
        )
        .is_none()
    );
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        fields,
        ["strokes.1.points", "strokes.2.points", "strokes.3"]
    );
}

#[test]
fn strokes_past_the_limit_are_counted_not_kept() {
    let body = format!("[{}]", vec!["{}"; MAX_STROKES + 50].join(","));
    let StrokesDraft::Strokes { strokes, count } = serde_json::from_str(&body).unwrap() else {
        panic!("an array");
    };
    assert_eq!((strokes.len(), count), (MAX_STROKES + 1, MAX_STROKES + 50));
    let not_array: StrokesDraft = serde_json::from_str(r#"{"a": 1}"#).unwrap();
    assert_eq!(not_array, StrokesDraft::NotAnArray);
}

/// Trees in any field are read past, never built: a draft of them is
/// a few bytes however large the tree.
#[test]
fn trees_in_fields_are_skipped_not_built() {
    let tree = format!("[{}]", vec!["[[0,0],[1,[2,[3]]]]"; 1000].join(","));
    let body = format!(
        r#"{{"id": {tree}, "tool": {tree}, "color": {{"a": {tree}}}, "width": {tree}, "extra": {tree}, "points": [[1, 2], {tree}, [1, 2, 3]]}}"#
    );
    let draft: StrokeDraft = serde_json::from_str(&body).unwrap();
    // Wrong whatever the canvas: only its faults are kept.
    assert!(matches!(draft, StrokeDraft::Wrong(..)));
    assert_eq!(draft.heap_bytes(), 0);
    let mut problems = Vec::new();
    assert!(check(&draft, 10, 10, "s", &mut problems).is_none());
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["s.id", "s.tool", "s.color", "s.width", "s.points"]);
    // A good stroke keeps its points, and its trees elsewhere are dropped.
    let good = format!(
        r##"{{"id": "a", "tool": "pen", "color": "#000000", "width": 2, "extra": {tree}, "points": [[1, 2], [3, 4]]}}"##
    );
    let draft: StrokeDraft = serde_json::from_str(&good).unwrap();
    let StrokeDraft::Object(fields) = &draft else {
        panic!("a stroke");
    };
    assert_eq!(
        fields.points,
        PointsDraft::Pairs {
            pairs: vec![[1.0, 2.0], [3.0, 4.0]],
            count: 2,
            malformed: false
        }
    );
}

/// A wrong stroke still names an off-canvas point, as a right one does.
#[test]
fn a_wrong_stroke_still_names_its_points_off_the_canvas() {
    let draft = StrokeDraft::from_value(
        &json!({"id": "s1", "tool": "brush", "color": "#000000", "width": 4, "points": [[1, 20]]}),
    );
    let mut problems = Vec::new();
    assert!(check(&draft, 10, 10, "s", &mut problems).is_none());
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["s.tool", "s.points"]);
}

/// Past the memory limit the rest is skipped and the draft says so.
#[test]
fn drafts_past_their_memory_limit_are_too_large() {
    let body = format!("[{}]", vec!["{}"; 5000].join(","));
    let seed = StrokesSeed {
        memory_limit: 64 * 1024,
    };
    let mut json = serde_json::Deserializer::from_str(&body);
    assert_eq!(seed.deserialize(&mut json).unwrap(), StrokesDraft::TooLarge);
    json.end().unwrap();
    let small = format!("[{}]", vec!["{}"; 10].join(","));
    let mut json = serde_json::Deserializer::from_str(&small);
    assert!(matches!(
        seed.deserialize(&mut json).unwrap(),
        StrokesDraft::Strokes { count: 10, .. }
    ));
}

/// A wrong stroke takes a vector slot of 24 bytes and no heap: what the
/// drawing routes' floor of memory is sized for.
#[test]
fn a_wrong_stroke_is_small() {
    assert!(std::mem::size_of::<StrokeDraft>() <= 24);
}
