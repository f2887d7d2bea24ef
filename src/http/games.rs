//! Contract section "Educational games": games made from a story's text,
//! answers checked against the version played, best scores, leaderboards.

use std::collections::HashMap;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use storybook_games::{Answer, Game, Kind, Submitted};
use storybook_store::{Store, Story, User};

use super::access::visible_story;
use super::{ApiRouter, Doc};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiPath, AuthUser, JsonFields, MaybeUser};
use crate::state::{Caches, Tools};

/// Leaderboard length.
const LEADERBOARD_SIZE: i64 = 10;

pub fn router() -> ApiRouter {
    ApiRouter::new("games")
        .get(
            "/api/stories/{id}/games",
            kinds,
            Doc::new("The kinds of game this story can make").returns(200, Some("GameKinds")).errors(&[404]),
        )
        .get(
            "/api/stories/{id}/games/{kind}",
            game,
            Doc::new("A game (3–10 questions, no answers); an unknown kind, or one the story cannot make, is 404")
                .returns(200, Some("Game"))
                .errors(&[404]),
        )
        .post(
            "/api/stories/{id}/games/{kind}/answers",
            answers,
            Doc::new("Check answers against the version played (409 when the story changed); keeps your best score")
                .user()
                .body("GameAnswers")
                .returns(200, Some("GameScore"))
                .errors(&[404, 409]),
        )
        .get(
            "/api/stories/{id}/games/{kind}/leaderboard",
            leaderboard,
            Doc::new("The top 10 best scores, highest first").returns(200, Some("Leaderboard")).errors(&[404]),
        )
}

/// The game of `kind` for a story the viewer may read, or `404`.
async fn load_game(
    store: &Store,
    caches: &Caches,
    tools: &Tools,
    id: i64,
    kind: &str,
    viewer: Option<&User>,
) -> ApiResult<(std::sync::Arc<Story>, Game)> {
    let kind = Kind::parse(kind).ok_or(ApiError::NotFound)?;
    let story = visible_story(store, caches, id, viewer).await?;
    let game = make_game(tools, &story, kind).ok_or(ApiError::NotFound)?;
    Ok((story, game))
}

fn make_game(tools: &Tools, story: &Story, kind: Kind) -> Option<Game> {
    let pages: Vec<&str> = story.pages.iter().map(|p| p.text.as_str()).collect();
    let allowed = |word: &str| tools.profanity.is_clean(word);
    storybook_games::Story::new(story.id, story.version, &pages, &allowed).game(kind)
}

fn answer_json(answer: &Answer) -> Value {
    match answer {
        Answer::Word(word) => json!(word),
        Answer::Sequence(items) => json!(items),
    }
}

/// Games: `GET /api/stories/{id}/games`.
async fn kinds(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(tools): State<Tools>,
    MaybeUser(viewer): MaybeUser,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    let story = visible_story(&store, &caches, id, viewer.as_ref()).await?;
    let pages: Vec<&str> = story.pages.iter().map(|p| p.text.as_str()).collect();
    let allowed = |word: &str| tools.profanity.is_clean(word);
    let kinds: Vec<&str> = storybook_games::Story::new(story.id, story.version, &pages, &allowed)
        .kinds()
        .into_iter()
        .map(Kind::as_str)
        .collect();
    Ok(Json(json!({ "kinds": kinds })))
}

/// Games: `GET /api/stories/{id}/games/{kind}`.
async fn game(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(tools): State<Tools>,
    MaybeUser(viewer): MaybeUser,
    ApiPath((id, kind)): ApiPath<(i64, String)>,
) -> ApiResult<Json<Value>> {
    let (story, game) = load_game(&store, &caches, &tools, id, &kind, viewer.as_ref()).await?;
    let questions: Vec<Value> = game
        .questions
        .iter()
        .map(|q| {
            let mut question = json!({ "id": q.id, "prompt": q.prompt });
            if let Some(choices) = &q.choices {
                question["choices"] = json!(choices);
            }
            question
        })
        .collect();
    Ok(Json(json!({
        "kind": game.kind.as_str(),
        "story_id": story.id,
        "version": story.version,
        "questions": questions,
    })))
}

/// Games: `POST /api/stories/{id}/games/{kind}/answers`.
async fn answers(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(tools): State<Tools>,
    AuthUser(user): AuthUser,
    ApiPath((id, kind)): ApiPath<(i64, String)>,
    JsonFields(mut body): JsonFields,
) -> ApiResult<Json<Value>> {
    let (story, game) = load_game(&store, &caches, &tools, id, &kind, Some(&user)).await?;
    let version = body.required_i64("version");
    let mut submitted = HashMap::new();
    match body.take("answers") {
        Some(Value::Object(answers)) => {
            for (question, answer) in answers {
                let value = match answer {
                    Value::String(word) => Some(Submitted::Word(word)),
                    Value::Array(items) if items.iter().all(Value::is_string) => {
                        Some(Submitted::Sequence(
                            items
                                .into_iter()
                                .filter_map(|i| i.as_str().map(str::to_owned))
                                .collect(),
                        ))
                    }
                    _ => None,
                };
                match value {
                    Some(value) => {
                        submitted.insert(question, value);
                    }
                    None => body.reject(
                        format!("answers.{question}"),
                        "must be a string, or an array of strings for order",
                    ),
                }
            }
        }
        None => body.reject("answers", "is required"),
        Some(_) => body.reject("answers", "must be an object of question id to answer"),
    }
    body.finish()?;
    if version != Some(story.version) {
        return Err(ApiError::Conflict(format!(
            "the story has changed since this game was made; play version {}",
            story.version
        )));
    }
    let score = storybook_games::check(&game, &submitted);
    store
        .record_score(
            user.id,
            id,
            game.kind.as_str(),
            score.score as i64,
            score.total as i64,
        )
        .await?;
    let results: serde_json::Map<String, Value> = score
        .results
        .iter()
        .map(|(id, marked)| {
            (
                id.clone(),
                json!({ "correct": marked.correct, "answer": answer_json(&marked.answer) }),
            )
        })
        .collect();
    Ok(Json(
        json!({ "score": score.score, "total": score.total, "results": results }),
    ))
}

/// Games: `GET /api/stories/{id}/games/{kind}/leaderboard`.
async fn leaderboard(
    State(store): State<Store>,
    State(caches): State<Caches>,
    State(tools): State<Tools>,
    MaybeUser(viewer): MaybeUser,
    ApiPath((id, kind)): ApiPath<(i64, String)>,
) -> ApiResult<Json<Value>> {
    let (_, game) = load_game(&store, &caches, &tools, id, &kind, viewer.as_ref()).await?;
    let items = store
        .leaderboard(id, game.kind.as_str(), LEADERBOARD_SIZE)
        .await?;
    Ok(Json(json!({ "items": items })))
}
