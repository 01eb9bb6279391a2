//! `GET /_matrix/client/v1/rooms/{roomId}/hierarchy` — a space's tree of rooms, depth first,
//! as far as the user may see it.
//! <https://spec.matrix.org/v1.16/client-server-api/#get_matrixclientv1roomsroomidhierarchy>

use std::collections::HashSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Json, Router};
use hearth_rooms::StateIds;
use ruma::api::client::space::get_hierarchy::v1 as endpoint;
use ruma::api::error::ErrorKind;
use ruma::events::StateEventType;
use ruma::{OwnedRoomId, RoomId, UserId};
use serde_json::{Value, json};

use crate::client::directory::chunk;
use crate::client::room_access::state_content;
use crate::extract::Ruma;
use crate::ruma_glue::route as route_endpoint;
use crate::{ApiError, ApiState};

const DEFAULT_LIMIT: u64 = 50;
const MAX_LIMIT: u64 = 200;
const DEFAULT_MAX_DEPTH: u64 = 10;
const MAX_DEPTH: u64 = 50;
/// Rooms one walk visits at most, whatever the tree holds.
// NOTSPEC: a larger space is cut off there (pages end early).
const MAX_WALK: usize = 2_000;
/// Children of one space looked at, in order (as Synapse caps them).
// NOTSPEC: the spec sets no number.
const MAX_CHILDREN: usize = 50;

pub(crate) fn route(router: Router<ApiState>) -> Router<ApiState> {
    route_endpoint::<endpoint::Request, _, _>(router, handler)
}

fn invalid(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidParam, message)
}

/// `from` tokens: `h{offset}_{max_depth}_{suggested_only}`; the spec forbids changing the
/// last two while paginating.
fn parse_from(from: &str, max_depth: u64, suggested_only: bool) -> Result<usize, ApiError> {
    let mut parts = from.strip_prefix('h').unwrap_or("x").split('_');
    let offset = parts.next().and_then(|n| n.parse::<usize>().ok());
    let depth = parts.next().and_then(|n| n.parse::<u64>().ok());
    let suggested = parts.next().map(|s| s == "1");
    match (offset, depth, suggested, parts.next()) {
        (Some(offset), Some(depth), Some(suggested), None) if offset <= MAX_WALK => {
            if depth != max_depth || suggested != suggested_only {
                return Err(invalid(
                    "suggested_only and max_depth cannot change on paginated requests",
                ));
            }
            Ok(offset)
        }
        _ => Err(invalid("unknown from token")),
    }
}

async fn handler(
    State(state): State<ApiState>,
    request: Ruma<endpoint::Request>,
) -> Result<Json<Value>, ApiError> {
    let user = request.caller()?.user_id.clone();
    let body = request.body;
    let limit = body.limit.map_or(DEFAULT_LIMIT, u64::from);
    if limit == 0 {
        return Err(invalid("limit must be greater than zero"));
    }
    let limit = usize::try_from(limit.min(MAX_LIMIT)).unwrap_or(usize::MAX);
    let max_depth = body
        .max_depth
        .map_or(DEFAULT_MAX_DEPTH, u64::from)
        .min(MAX_DEPTH);
    let offset = match &body.from {
        Some(from) => parse_from(from, max_depth, body.suggested_only)?,
        None => 0,
    };
    let forbidden = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorKind::Forbidden,
            "you may not view this room",
        )
    };
    let root = Node::load(&state, &body.room_id)
        .await?
        .ok_or_else(forbidden)?;
    if !root.accessible(&state, &user).await? {
        return Err(forbidden());
    }

    // Depth first, children in the spec's order; each room once; rooms the user may not see
    // are left out together with what is below them.
    let mut rooms = Vec::new();
    let mut seen: HashSet<OwnedRoomId> = HashSet::from([body.room_id.clone()]);
    let mut stack = vec![(root, 0_u64)];
    let mut cut = false;
    while let Some((node, depth)) = stack.pop() {
        if rooms.len() >= offset + limit {
            stack.push((node, depth));
            break;
        }
        if seen.len() > MAX_WALK {
            cut = true;
            break;
        }
        let children = node.children(&state, body.suggested_only).await?;
        let mut entry = chunk(&state, &node.room_id).await?;
        entry["children_state"] = Value::Array(children.iter().map(|c| c.event.clone()).collect());
        rooms.push(entry);
        if depth >= max_depth {
            continue;
        }
        let mut below = Vec::new();
        for child in children {
            if seen.len() > MAX_WALK {
                cut = true;
                break;
            }
            if !seen.insert(child.room_id.clone()) {
                continue;
            }
            // Rooms this server is not in are unknown without federation.
            // NOTSPEC: the spec has servers ask the `via` servers for them.
            let Some(node) = Node::load(&state, &child.room_id).await? else {
                continue;
            };
            if node.accessible(&state, &user).await? {
                below.push((node, depth + 1));
            }
        }
        // The stack pops the last first: push in reverse to visit children in order.
        stack.extend(below.into_iter().rev());
    }
    let more = !stack.is_empty() && !cut;
    let page: Vec<Value> = rooms.into_iter().skip(offset).take(limit).collect();
    let mut response = json!({ "rooms": page });
    if more {
        let suggested = u8::from(body.suggested_only);
        response["next_batch"] = format!("h{}_{max_depth}_{suggested}", offset + limit).into();
    }
    Ok(Json(response))
}

/// A room of the tree with its current state.
struct Node {
    room_id: OwnedRoomId,
    version: ruma::RoomVersionId,
    state: StateIds,
}

/// A child of a space: its `m.space.child` event (stripped, with `origin_server_ts`) and how it
/// sorts.
struct Child {
    room_id: OwnedRoomId,
    event: Value,
    order: Option<String>,
    ts: u64,
}

impl Node {
    /// The room, if this server knows it.
    async fn load(state: &ApiState, room: &RoomId) -> Result<Option<Self>, ApiError> {
        let Some(head) = state.rooms.store().room_head(room).await? else {
            return Ok(None);
        };
        Ok(Some(Self {
            room_id: room.to_owned(),
            version: head.room_version,
            state: state.rooms.current_state(room).await?,
        }))
    }

    async fn content(
        &self,
        state: &ApiState,
        kind: StateEventType,
        key: &str,
    ) -> Result<Value, ApiError> {
        state_content(&state.rooms, &self.state, kind, key).await
    }

    /// Whether the spec lets the user see the room here: they are in it or invited, may join
    /// or knock, or its history is world-readable.
    async fn accessible(&self, state: &ApiState, user: &UserId) -> Result<bool, ApiError> {
        let membership = self
            .content(state, StateEventType::RoomMember, user.as_str())
            .await?["membership"]
            .as_str()
            .map(str::to_owned);
        if matches!(membership.as_deref(), Some("join" | "invite")) {
            return Ok(true);
        }
        let visibility = self
            .content(state, StateEventType::RoomHistoryVisibility, "")
            .await?;
        if visibility["history_visibility"] == "world_readable" {
            return Ok(true);
        }
        if membership.as_deref() == Some("ban") {
            return Ok(false);
        }
        let rules = self
            .content(state, StateEventType::RoomJoinRules, "")
            .await?;
        // Knocking and restricted joins only exist in the room versions that define them.
        let Some(auth) = self.version.rules().map(|r| r.authorization) else {
            return Ok(false);
        };
        Ok(match rules["join_rule"].as_str() {
            Some("public") => true,
            Some("knock") if auth.knocking => true,
            Some("knock_restricted") if auth.knock_restricted_join_rule => true,
            Some("restricted") if auth.restricted_join_rule => {
                let mine = state.rooms.store().memberships_of(user).await?;
                rules["allow"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|allow| {
                        allow["type"] == "m.room_membership"
                            && mine.iter().any(|m| {
                                m.membership == "join" && allow["room_id"] == m.room_id.as_str()
                            })
                    })
            }
            _ => false,
        })
    }

    /// The room's children in the spec's order: those with a valid `order` first, by it, then
    /// by the child event's timestamp, then by room id. A child without `via` is no child.
    async fn children(
        &self,
        state: &ApiState,
        suggested_only: bool,
    ) -> Result<Vec<Child>, ApiError> {
        let ids: Vec<_> = self
            .state
            .iter()
            .filter(|((kind, _), _)| *kind == StateEventType::SpaceChild)
            .map(|(_, id)| id.clone())
            .collect();
        let pdus = state.rooms.load_pdus(&ids).await?;
        let mut children: Vec<Child> = Vec::new();
        for pdu in ids.iter().filter_map(|id| pdus.get(id)) {
            let Some(room_id) = pdu.state_key().and_then(|k| OwnedRoomId::try_from(k).ok()) else {
                continue;
            };
            let content: Value = serde_json::from_str(pdu.content().get()).unwrap_or(Value::Null);
            let has_via = content["via"]
                .as_array()
                .is_some_and(|via| !via.is_empty() && via.iter().all(Value::is_string));
            if !has_via || (suggested_only && content["suggested"] != true) {
                continue;
            }
            let order = content["order"]
                .as_str()
                .filter(|o| o.len() <= 50 && o.chars().all(|c| (' '..='~').contains(&c)))
                .map(str::to_owned);
            let ts = u64::from(pdu.origin_server_ts().get());
            children.push(Child {
                event: json!({
                    "type": "m.space.child",
                    "state_key": room_id,
                    "content": content,
                    "sender": pdu.sender(),
                    "origin_server_ts": ts,
                }),
                room_id,
                order,
                ts,
            });
        }
        children.sort_by(|a, b| {
            (a.order.is_none(), &a.order, a.ts, &a.room_id).cmp(&(
                b.order.is_none(),
                &b.order,
                b.ts,
                &b.room_id,
            ))
        });
        children.truncate(MAX_CHILDREN);
        Ok(children)
    }
}
