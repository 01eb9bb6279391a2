//! The authorisation rules through the real append pipeline (on SQLite), across room versions
//! 1-12. Every test shows both sides: an event the rules refuse (`RoomError::Forbidden`, and the
//! room state is left as it was) and the event that is allowed (it is stored and, for state
//! events, becomes the current state at its key).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use hearth_rooms::{EventDraft, RoomError, Rooms};
use hearth_store::testing::TestStore;
use ruma::events::StateEventType;
use ruma::{EventId, OwnedEventId, OwnedRoomId, RoomVersionId, UserId};
use serde_json::{Value, json};

fn version(n: u8) -> RoomVersionId {
    RoomVersionId::try_from(n.to_string().as_str()).unwrap()
}

fn all_versions() -> impl Iterator<Item = (u8, RoomVersionId)> {
    (1..=12).map(|n| (n, version(n)))
}

/// Whether room creators are implicit (room version 12 and later).
fn creators_implicit(version: &RoomVersionId) -> bool {
    version
        .rules()
        .unwrap()
        .authorization
        .explicitly_privilege_room_creators
}

async fn setup() -> (TestStore, Rooms) {
    let test = hearth_store::testing::sqlite().await;
    let rooms = rooms(&test);
    (test, rooms)
}

/// Append `draft` and expect the auth rules to refuse it, for a reason containing `because`,
/// leaving the room state unchanged.
async fn refused(
    rooms: &Rooms,
    room: &OwnedRoomId,
    sender: &UserId,
    draft: EventDraft,
    what: &str,
    because: &str,
) {
    let before = rooms.current_state(room).await.unwrap();
    match try_send(rooms, room, sender, draft).await {
        Err(RoomError::Forbidden(why)) => assert!(
            why.contains(because),
            "{what}: refused, but for another reason: {why} (expected: {because})"
        ),
        other => panic!("{what}: expected Forbidden, got {other:?}"),
    }
    assert_eq!(
        rooms.current_state(room).await.unwrap(),
        before,
        "{what}: a refused event leaves the state as it was"
    );
}

/// Append `draft` and expect it to pass: it is stored and, if it is a state event, it is the
/// room's current state at its key.
async fn allowed(
    rooms: &Rooms,
    room: &OwnedRoomId,
    sender: &UserId,
    draft: EventDraft,
    what: &str,
) -> OwnedEventId {
    let key = draft
        .state_key
        .clone()
        .map(|k| (StateEventType::from(draft.kind.to_string()), k));
    let appended = try_send(rooms, room, sender, draft)
        .await
        .unwrap_or_else(|e| panic!("{what}: expected the event to be allowed, got {e}"));
    let pdu = rooms.pdu(&appended.event_id).await.unwrap();
    assert!(pdu.is_some(), "{what}: the allowed event is stored");
    if let Some(key) = key {
        assert_eq!(
            rooms.current_state(room).await.unwrap().get(&key),
            Some(&appended.event_id),
            "{what}: the allowed event is the current state at {key:?}"
        );
    }
    appended.event_id
}

async fn content_of(rooms: &Rooms, id: &EventId) -> Value {
    let pdu = rooms.pdu(id).await.unwrap().expect("event is stored");
    serde_json::from_str(pdu.content().get()).unwrap()
}

/// A membership event with extra content fields.
fn member_with(target: &UserId, membership: &str, extra: Value) -> EventDraft {
    let mut content = json!({ "membership": membership });
    merge(&mut content, extra);
    EventDraft::state("m.room.member", target.as_str(), content)
}

/// Merge `overrides` into `base`, one level deep for objects.
fn merge(base: &mut Value, overrides: Value) {
    let (Value::Object(base), Value::Object(overrides)) = (base, overrides) else {
        panic!("merge wants two objects");
    };
    for (k, v) in overrides {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(inner)), Value::Object(more)) => inner.extend(more),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

/// A power levels event: `users` (without @alice, the creator, in v12 where creators are
/// implicit), the same defaults as the common room set-up (state_default, ban, kick and redact
/// 50, invite 0, `m.room.power_levels` needs 100), then `overrides` merged in.
fn levels(version: &RoomVersionId, users: &[(&UserId, i64)], overrides: Value) -> EventDraft {
    let users: serde_json::Map<_, _> = users
        .iter()
        .filter(|(u, _)| !(creators_implicit(version) && u.localpart() == "alice"))
        .map(|(u, l)| (u.to_string(), json!(l)))
        .collect();
    let mut content = json!({
        "users": users, "users_default": 0, "events_default": 0, "state_default": 50,
        "ban": 50, "kick": 50, "redact": 50, "invite": 0,
        "events": { "m.room.power_levels": 100 }
    });
    merge(&mut content, overrides);
    EventDraft::state("m.room.power_levels", "", content)
}

fn topic(text: &str) -> EventDraft {
    EventDraft::state("m.room.topic", "", json!({ "topic": text }))
}

// ---------------------------------------------------------------------------------------------
// Membership
// ---------------------------------------------------------------------------------------------

/// Anyone may join a public room, but only themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_room_join() {
    let (_test, rooms) = setup().await;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    for (_, v) in all_versions() {
        let room = room(&rooms, v.clone(), "public").await;
        refused(
            &rooms,
            &room,
            &alice,
            member(&carol, "join"),
            &format!("v{v}: joining someone else"),
            "must match target user",
        )
        .await;
        allowed(
            &rooms,
            &room,
            &bob,
            member(&bob, "join"),
            &format!("v{v}: join a public room"),
        )
        .await;
    }
}

/// An invite-only room needs an invite, which a non-member cannot give themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_only_join_needs_an_invite() {
    let (_test, rooms) = setup().await;
    let (alice, bob) = (user("alice"), user("bob"));
    for (_, v) in all_versions() {
        let room = room(&rooms, v.clone(), "invite").await;
        refused(
            &rooms,
            &room,
            &bob,
            member(&bob, "join"),
            &format!("v{v}: join an invite-only room uninvited"),
            "not `public`",
        )
        .await;
        refused(
            &rooms,
            &room,
            &bob,
            member(&bob, "invite"),
            &format!("v{v}: a non-member invites themselves"),
            "sender is not joined",
        )
        .await;
        allowed(
            &rooms,
            &room,
            &alice,
            member(&bob, "invite"),
            &format!("v{v}: alice invites bob"),
        )
        .await;
        allowed(
            &rooms,
            &room,
            &bob,
            member(&bob, "join"),
            &format!("v{v}: invited bob joins"),
        )
        .await;
    }
}

/// A banned user can neither join nor be invited; unbanning needs the ban level; after the unban
/// the user can join again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_blocks_join_until_unban() {
    let (_test, rooms) = setup().await;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    for (_, v) in all_versions() {
        let room = room(&rooms, v.clone(), "public").await;
        send(&rooms, &room, &bob, member(&bob, "join")).await;
        send(&rooms, &room, &carol, member(&carol, "join")).await;
        allowed(
            &rooms,
            &room,
            &alice,
            member(&bob, "ban"),
            &format!("v{v}: alice bans bob"),
        )
        .await;
        refused(
            &rooms,
            &room,
            &bob,
            member(&bob, "join"),
            &format!("v{v}: banned bob joins"),
            "banned user cannot join",
        )
        .await;
        refused(
            &rooms,
            &room,
            &alice,
            member(&bob, "invite"),
            &format!("v{v}: invite a banned user"),
            "joined or banned",
        )
        .await;
        refused(
            &rooms,
            &room,
            &carol,
            member(&bob, "leave"),
            &format!("v{v}: carol (level 0, ban level 50) unbans bob"),
            "enough power to unban",
        )
        .await;
        allowed(
            &rooms,
            &room,
            &alice,
            member(&bob, "leave"),
            &format!("v{v}: alice unbans bob"),
        )
        .await;
        allowed(
            &rooms,
            &room,
            &bob,
            member(&bob, "join"),
            &format!("v{v}: unbanned bob joins"),
        )
        .await;
    }
}

/// Inviting needs the invite level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_needs_the_invite_level() {
    let (_test, rooms) = setup().await;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    for (_, v) in all_versions() {
        let room = room(&rooms, v.clone(), "public").await;
        send(&rooms, &room, &bob, member(&bob, "join")).await;
        allowed(
            &rooms,
            &room,
            &alice,
            levels(&v, &[(&alice, 100)], json!({ "invite": 50 })),
            &format!("v{v}: alice raises the invite level to 50"),
        )
        .await;
        refused(
            &rooms,
            &room,
            &bob,
            member(&carol, "invite"),
            &format!("v{v}: bob (level 0) invites with invite level 50"),
            "enough power to invite",
        )
        .await;
        allowed(
            &rooms,
            &room,
            &alice,
            levels(&v, &[(&alice, 100), (&bob, 50)], json!({ "invite": 50 })),
            &format!("v{v}: alice raises bob to 50"),
        )
        .await;
        allowed(
            &rooms,
            &room,
            &bob,
            member(&carol, "invite"),
            &format!("v{v}: bob (level 50) invites"),
        )
        .await;
    }
}

/// Kicking needs the kick level and a target below the sender's own level.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kick_needs_power_over_the_target() {
    let (_test, rooms) = setup().await;
    let (alice, bob, carol, dave) = (user("alice"), user("bob"), user("carol"), user("dave"));
    for (_, v) in all_versions() {
        let room = room(&rooms, v.clone(), "public").await;
        for u in [&bob, &carol, &dave] {
            send(&rooms, &room, u, member(u, "join")).await;
        }
        send(
            &rooms,
            &room,
            &alice,
            levels(&v, &[(&alice, 100), (&bob, 50), (&carol, 50)], json!({})),
        )
        .await;
        refused(
            &rooms,
            &room,
            &dave,
            member(&carol, "leave"),
            &format!("v{v}: dave (level 0, kick level 50) kicks"),
            "enough power to kick",
        )
        .await;
        refused(
            &rooms,
            &room,
            &bob,
            member(&carol, "leave"),
            &format!("v{v}: bob (50) kicks carol (50), an equal"),
            "enough power to kick",
        )
        .await;
        refused(
            &rooms,
            &room,
            &bob,
            member(&alice, "leave"),
            &format!("v{v}: bob (50) kicks alice (100 / creator)"),
            "enough power to kick",
        )
        .await;
        refused(
            &rooms,
            &room,
            &bob,
            member(&carol, "ban"),
            &format!("v{v}: bob (50) bans carol (50), an equal"),
            "enough power to ban",
        )
        .await;
        allowed(
            &rooms,
            &room,
            &bob,
            member(&dave, "leave"),
            &format!("v{v}: bob (50) kicks dave (0)"),
        )
        .await;
        allowed(
            &rooms,
            &room,
            &alice,
            member(&bob, "leave"),
            &format!("v{v}: alice kicks bob"),
        )
        .await;
    }
}

// ---------------------------------------------------------------------------------------------
// Power levels
// ---------------------------------------------------------------------------------------------

/// Changing power levels needs the level of the `m.room.power_levels` event; nobody can grant or
/// set anything above their own level, nor change the level of an equal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn power_level_changes() {
    let (_test, rooms) = setup().await;
    let (alice, bob, carol, dave) = (user("alice"), user("bob"), user("carol"), user("dave"));
    for (_, v) in all_versions() {
        let room = room(&rooms, v.clone(), "public").await;
        for u in [&bob, &carol, &dave] {
            send(&rooms, &room, u, member(u, "join")).await;
        }
        let base = [(&*alice, 100), (&*bob, 50), (&*dave, 50)];
        allowed(
            &rooms,
            &room,
            &alice,
            levels(&v, &base, json!({})),
            &format!("v{v}: alice sets bob and dave to 50"),
        )
        .await;
        refused(
            &rooms,
            &room,
            &carol,
            levels(
                &v,
                &[(&alice, 100), (&bob, 50), (&dave, 50), (&carol, 0)],
                json!({}),
            ),
            &format!("v{v}: carol (0) sends power levels (needs 100)"),
            "send event of type `m.room.power_levels`",
        )
        .await;
        refused(
            &rooms,
            &room,
            &bob,
            levels(
                &v,
                &[(&alice, 100), (&bob, 50), (&dave, 50), (&carol, 10)],
                json!({}),
            ),
            &format!("v{v}: bob (50) sends power levels (needs 100)"),
            "send event of type `m.room.power_levels`",
        )
        .await;

        // Let moderators edit power levels, then probe the per-entry rules with bob (50).
        let mods = json!({ "events": { "m.room.power_levels": 50 } });
        allowed(
            &rooms,
            &room,
            &alice,
            levels(&v, &base, mods.clone()),
            &format!("v{v}: alice lets level 50 edit power levels"),
        )
        .await;
        refused(
            &rooms,
            &room,
            &bob,
            levels(
                &v,
                &[(&alice, 100), (&bob, 50), (&dave, 50), (&carol, 51)],
                mods.clone(),
            ),
            &format!("v{v}: bob (50) raises carol to 51, above himself"),
            "to change `@carol",
        )
        .await;
        refused(
            &rooms,
            &room,
            &bob,
            levels(&v, &[(&alice, 100), (&bob, 51), (&dave, 50)], mods.clone()),
            &format!("v{v}: bob (50) raises himself to 51"),
            "to change `@bob",
        )
        .await;
        refused(
            &rooms,
            &room,
            &bob,
            levels(&v, &[(&alice, 100), (&bob, 50), (&dave, 0)], mods.clone()),
            &format!("v{v}: bob (50) demotes dave (50), an equal"),
            "to change `@dave",
        )
        .await;
        let mut ban_75 = mods.clone();
        merge(&mut ban_75, json!({ "ban": 75 }));
        refused(
            &rooms,
            &room,
            &bob,
            levels(&v, &base, ban_75),
            &format!("v{v}: bob (50) sets the ban level to 75"),
            "power level of `ban`",
        )
        .await;
        allowed(
            &rooms,
            &room,
            &bob,
            levels(
                &v,
                &[(&alice, 100), (&bob, 50), (&dave, 50), (&carol, 50)],
                mods.clone(),
            ),
            &format!("v{v}: bob (50) grants carol 50, his own level"),
        )
        .await;

        // Up to v11 the creator is an ordinary level-100 user (v12: see the creator tests).
        if !creators_implicit(&v) {
            let all = [(&*alice, 100), (&*bob, 50), (&*dave, 50), (&*carol, 50)];
            let mut raised = all.to_vec();
            raised[1].1 = 101;
            refused(
                &rooms,
                &room,
                &alice,
                levels(&v, &raised, mods.clone()),
                &format!("v{v}: alice (100) raises bob to 101"),
                "to change `@bob",
            )
            .await;
            raised[1].1 = 100;
            allowed(
                &rooms,
                &room,
                &alice,
                levels(&v, &raised, mods.clone()),
                &format!("v{v}: alice (100) raises bob to 100, her own level"),
            )
            .await;
        }
    }
}

/// Room version 10 made power levels strictly integers: the string "50" that v1-v9 read as 50
/// is refused from v10 on, in the top-level fields and in `users`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v10_integer_power_levels() {
    let (_test, rooms) = setup().await;
    let (alice, bob) = (user("alice"), user("bob"));
    for n in [9, 10, 11, 12] {
        let v = version(n);
        let room = room(&rooms, v.clone(), "public").await;
        send(&rooms, &room, &bob, member(&bob, "join")).await;
        let string_field = levels(&v, &[(&alice, 100)], json!({ "ban": "50" }));
        let string_user = levels(
            &v,
            &[(&alice, 100)],
            json!({ "users": { bob.as_str(): "50" } }),
        );
        if n < 10 {
            allowed(
                &rooms,
                &room,
                &alice,
                string_field,
                &format!("v{v}: \"ban\": \"50\""),
            )
            .await;
            allowed(
                &rooms,
                &room,
                &alice,
                string_user,
                &format!("v{v}: bob at \"50\""),
            )
            .await;
            // The string level counts: bob (at "50") may send state (state_default 50).
            allowed(
                &rooms,
                &room,
                &bob,
                topic("bob's"),
                &format!("v{v}: bob at \"50\" sets the topic"),
            )
            .await;
        } else {
            refused(
                &rooms,
                &room,
                &alice,
                string_field,
                &format!("v{v}: \"ban\": \"50\""),
                "unexpected format of `ban`",
            )
            .await;
            refused(
                &rooms,
                &room,
                &alice,
                string_user,
                &format!("v{v}: bob at \"50\""),
                "unexpected format of `users`",
            )
            .await;
            refused(
                &rooms,
                &room,
                &bob,
                topic("bob's"),
                &format!("v{v}: bob (still 0) sets the topic"),
                "send event of type `m.room.topic`",
            )
            .await;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Redactions
// ---------------------------------------------------------------------------------------------

/// v1/v2 authorise a redaction by the sender's level or by the domain rule (the redaction's
/// event id and the target's event id have the same server name); from v3 the auth rules do not
/// look at the target at all (whether a redaction is *applied* is decided elsewhere).
///
/// What the assertions show: bob (level 0, redact level 50) redacting alice's message, whose id
/// names this server like his redaction's does, passes in every version. A target whose id names
/// another server separates the versions: refused for bob in v1/v2 (only the level could allow
/// it, and alice has it), allowed in v3+.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redaction_auth_by_version() {
    // The auth rules let any member send a redaction from v3 (and check only the server of the
    // target's id in v1/v2); the pipeline applies the client-server rule on top: a user may
    // redact their own events, and others' only with the redact power level.
    let (_test, rooms) = setup().await;
    let (alice, bob) = (user("alice"), user("bob"));
    let foreign = OwnedEventId::try_from("$someevent:elsewhere.test").unwrap();
    for (_, v) in all_versions() {
        let room = room(&rooms, v.clone(), "public").await;
        send(&rooms, &room, &bob, member(&bob, "join")).await;
        let alices = send(&rooms, &room, &alice, text("alice's")).await.event_id;
        let bobs = send(&rooms, &room, &bob, text("bob's")).await.event_id;
        refused(
            &rooms,
            &room,
            &bob,
            EventDraft::redaction(alices.clone(), None),
            &format!("v{v}: bob (below redact level) redacts alice's event"),
            "redact power level",
        )
        .await;
        allowed(
            &rooms,
            &room,
            &bob,
            EventDraft::redaction(bobs, None),
            &format!("v{v}: bob redacts his own event"),
        )
        .await;
        allowed(
            &rooms,
            &room,
            &alice,
            EventDraft::redaction(alices, None),
            &format!("v{v}: alice (at redact level) redacts"),
        )
        .await;
        let err = try_send(
            &rooms,
            &room,
            &alice,
            EventDraft::redaction(foreign.clone(), Some("spam")),
        )
        .await
        .expect_err("redacting an event we don't have");
        assert!(matches!(err, RoomError::MissingEvent(_)), "v{v}: {err}");
    }
}

// ---------------------------------------------------------------------------------------------
// Join rules by version: knock (v7), restricted (v8), knock_restricted (v10)
// ---------------------------------------------------------------------------------------------

/// Knocking exists from v7. Before, `knock` is an unknown membership, and a `knock` join rule is
/// an unknown rule under which nobody can join, invited or not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knocking_from_v7() {
    let (_test, rooms) = setup().await;
    let (alice, bob) = (user("alice"), user("bob"));
    for (n, v) in all_versions() {
        let room = room(&rooms, v.clone(), "knock").await;
        if n < 7 {
            refused(
                &rooms,
                &room,
                &bob,
                member(&bob, "knock"),
                &format!("v{v}: knock before v7"),
                "unknown membership",
            )
            .await;
        } else {
            allowed(
                &rooms,
                &room,
                &bob,
                member(&bob, "knock"),
                &format!("v{v}: knock"),
            )
            .await;
        }
        refused(
            &rooms,
            &room,
            &bob,
            member(&bob, "join"),
            &format!("v{v}: join a knock room uninvited"),
            "not `public`",
        )
        .await;
        allowed(
            &rooms,
            &room,
            &alice,
            member(&bob, "invite"),
            &format!("v{v}: alice invites bob"),
        )
        .await;
        if n < 7 {
            refused(
                &rooms,
                &room,
                &bob,
                member(&bob, "join"),
                &format!("v{v}: an invite does not open an unknown join rule"),
                "not `public`",
            )
            .await;
        } else {
            allowed(
                &rooms,
                &room,
                &bob,
                member(&bob, "join"),
                &format!("v{v}: invited bob joins the knock room"),
            )
            .await;
        }
    }

    // Knocking needs a knock join rule.
    let room = room(&rooms, version(7), "public").await;
    refused(
        &rooms,
        &room,
        &bob,
        member(&bob, "knock"),
        "v7: knock on a public room",
        "knocking is not allowed",
    )
    .await;
}

/// `knock_restricted` exists from v10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn knock_restricted_from_v10() {
    let (_test, rooms) = setup().await;
    let bob = user("bob");
    for n in [9, 10] {
        let v = version(n);
        let room = room(&rooms, v.clone(), "knock_restricted").await;
        if n < 10 {
            refused(
                &rooms,
                &room,
                &bob,
                member(&bob, "knock"),
                &format!("v{v}: knock on knock_restricted"),
                "knocking is not allowed",
            )
            .await;
        } else {
            allowed(
                &rooms,
                &room,
                &bob,
                member(&bob, "knock"),
                &format!("v{v}: knock on knock_restricted"),
            )
            .await;
        }
    }
}

/// The restricted join rule exists from v8. Whether the joiner is in an allowed room is the
/// resident server's check before it signs `join_authorised_via_users_server`; the auth rules
/// only require that field, naming a joined member with the invite level (or an invite).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restricted_join_from_v8() {
    let (_test, rooms) = setup().await;
    let (alice, bob, carol, dave) = (user("alice"), user("bob"), user("carol"), user("dave"));
    let via = |u: &UserId| json!({ "join_authorised_via_users_server": u.as_str() });
    for n in 7..=12 {
        let v = version(n);
        // The room whose members may join this version's restricted room.
        let club = room(&rooms, version(10), "public").await;
        let rule = EventDraft::state(
            "m.room.join_rules",
            "",
            json!({
                "join_rule": "restricted",
                "allow": [{ "type": "m.room_membership", "room_id": club.as_str() }]
            }),
        );
        let room = room(&rooms, v.clone(), "invite").await;
        send(&rooms, &room, &alice, rule.clone()).await;
        if n < 8 {
            for draft in [member(&bob, "join"), member_with(&bob, "join", via(&alice))] {
                refused(
                    &rooms,
                    &room,
                    &bob,
                    draft,
                    &format!("v{v}: restricted is an unknown join rule before v8"),
                    "not `public`",
                )
                .await;
            }
            continue;
        }
        // Hearth vouches for its own users only when the allow conditions hold, so a named
        // authoriser alone (forged or not) gets nobody in.
        for draft in [member(&bob, "join"), member_with(&bob, "join", via(&alice))] {
            refused(
                &rooms,
                &room,
                &bob,
                draft,
                &format!("v{v}: join a restricted room without being entitled"),
                "only lets in members of the rooms it names",
            )
            .await;
        }
        send(
            &rooms,
            &room,
            &alice,
            levels(&v, &[(&alice, 100)], json!({ "invite": 50 })),
        )
        .await;
        send(&rooms, &room, &alice, member(&carol, "invite")).await;
        allowed(
            &rooms,
            &room,
            &carol,
            member(&carol, "join"),
            &format!("v{v}: an invited user joins a restricted room"),
        )
        .await;
        // Entitled through the club: Hearth names a joined member with the invite level (alice,
        // not carol below it, nor dave outside the room), whatever the client wrote.
        for joiner in [&bob, &dave] {
            send(&rooms, &club, joiner, member(joiner, "join")).await;
        }
        let forged = if n % 2 == 0 { via(&carol) } else { via(&dave) };
        let joined = allowed(
            &rooms,
            &room,
            &bob,
            member_with(&bob, "join", forged),
            &format!("v{v}: a member of an allowed room joins"),
        )
        .await;
        let content = content_of(&rooms, &joined).await;
        assert_eq!(
            content["join_authorised_via_users_server"],
            json!(alice.as_str()),
            "v{v}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Creators: v11 and v12
// ---------------------------------------------------------------------------------------------

/// From v11 the create event has no `creator` field: its sender is the creator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v11_create_has_no_creator_field() {
    let (_test, rooms) = setup().await;
    let (alice, bob) = (user("alice"), user("bob"));
    for n in [10, 11, 12] {
        let v = version(n);
        let (room, created) = rooms
            .create_room(&v, &alice, serde_json::Map::new())
            .await
            .unwrap();
        let state = rooms.current_state(&room).await.unwrap();
        let create_id = &state[&(StateEventType::RoomCreate, String::new())];
        assert_eq!(create_id, &created.event_id);
        let content = content_of(&rooms, create_id).await;
        assert_eq!(content["room_version"], json!(v.as_str()));
        if n < 11 {
            assert_eq!(
                content["creator"],
                json!(alice.as_str()),
                "v{v}: creator field"
            );
        } else {
            assert!(
                content.get("creator").is_none(),
                "v{v}: no creator field: {content}"
            );
        }
        let create = rooms.pdu(create_id).await.unwrap().unwrap();
        assert_eq!(create.sender(), &*alice);
        // The creator (the `creator` field up to v10, the sender since v11) may join right
        // after the create event; nobody else can.
        refused(
            &rooms,
            &room,
            &bob,
            member(&bob, "join"),
            &format!("v{v}: a non-creator joins first"),
            "no `m.room.join_rules` event",
        )
        .await;
        allowed(
            &rooms,
            &room,
            &alice,
            member(&alice, "join"),
            &format!("v{v}: the creator joins first"),
        )
        .await;
    }
}

/// v12: the creator has infinite power without appearing in `users`; up to v11 she is a level
/// 100 user like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v12_creator_has_infinite_power() {
    let (_test, rooms) = setup().await;
    let (alice, bob) = (user("alice"), user("bob"));

    let v = version(12);
    let room = room(&rooms, v.clone(), "public").await;
    send(&rooms, &room, &bob, member(&bob, "join")).await;
    let state = rooms.current_state(&room).await.unwrap();
    let pl = content_of(
        &rooms,
        &state[&(StateEventType::RoomPowerLevels, String::new())],
    )
    .await;
    assert!(
        pl["users"].get(alice.as_str()).is_none(),
        "alice is not in users: {pl}"
    );
    allowed(
        &rooms,
        &room,
        &alice,
        levels(&v, &[(&bob, 1000)], json!({})),
        "v12: the creator grants 1000",
    )
    .await;
    refused(
        &rooms,
        &room,
        &bob,
        member(&alice, "leave"),
        "v12: bob (1000) kicks the creator",
        "enough power to kick",
    )
    .await;
    refused(
        &rooms,
        &room,
        &bob,
        member(&alice, "ban"),
        "v12: bob (1000) bans the creator",
        "enough power to ban",
    )
    .await;
    allowed(
        &rooms,
        &room,
        &alice,
        member(&bob, "ban"),
        "v12: the creator bans bob (1000)",
    )
    .await;

    let v = version(11);
    let room = common::room(&rooms, v.clone(), "public").await;
    send(&rooms, &room, &bob, member(&bob, "join")).await;
    refused(
        &rooms,
        &room,
        &alice,
        levels(&v, &[(&alice, 100), (&bob, 1000)], json!({})),
        "v11: the creator (100) grants 1000",
        "to change `@bob",
    )
    .await;
}

/// v12: a power levels event may not list a creator in `users`; up to v11 that is how the
/// creator gets power.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v12_creators_must_not_be_in_users() {
    let (_test, rooms) = setup().await;
    let alice = user("alice");
    let listing_alice = EventDraft::state(
        "m.room.power_levels",
        "",
        json!({ "users": { alice.as_str(): 100 }, "events": { "m.room.power_levels": 100 } }),
    );
    let room = room(&rooms, version(12), "public").await;
    refused(
        &rooms,
        &room,
        &alice,
        listing_alice.clone(),
        "v12: power levels listing the creator",
        "creator user IDs are not allowed",
    )
    .await;
    let room = common::room(&rooms, version(11), "public").await;
    allowed(
        &rooms,
        &room,
        &alice,
        listing_alice,
        "v11: power levels listing the creator",
    )
    .await;
}

/// v12: `additional_creators` in the create content are creators too: infinite power without
/// being in `users`, and they may not be listed there. Before v12 the field means nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v12_additional_creators() {
    let (_test, rooms) = setup().await;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    let extra = || {
        let mut extra = serde_json::Map::new();
        extra.insert("additional_creators".into(), json!([bob.as_str()]));
        extra
    };
    let plain = |users: Value| {
        EventDraft::state(
            "m.room.power_levels",
            "",
            json!({ "users": users, "events": { "m.room.power_levels": 100 } }),
        )
    };

    let room = room_with(&rooms, version(12), "public", extra()).await;
    send(&rooms, &room, &bob, member(&bob, "join")).await;
    send(&rooms, &room, &carol, member(&carol, "join")).await;
    refused(
        &rooms,
        &room,
        &carol,
        plain(json!({ carol.as_str(): 50 })),
        "v12: carol (0) changes power levels",
        "send event of type `m.room.power_levels`",
    )
    .await;
    refused(
        &rooms,
        &room,
        &bob,
        plain(json!({ bob.as_str(): 100 })),
        "v12: power levels listing an additional creator",
        "creator user IDs are not allowed",
    )
    .await;
    allowed(
        &rooms,
        &room,
        &bob,
        plain(json!({ carol.as_str(): 1000 })),
        "v12: additional creator bob changes power levels, granting 1000",
    )
    .await;
    refused(
        &rooms,
        &room,
        &carol,
        member(&bob, "leave"),
        "v12: carol (1000) kicks additional creator bob",
        "enough power to kick",
    )
    .await;

    // An `additional_creators` entry that is no user id makes the create event invalid.
    let mut bad = serde_json::Map::new();
    bad.insert("additional_creators".into(), json!(["bob"]));
    let err = rooms
        .create_room(&version(12), &alice, bad)
        .await
        .unwrap_err();
    assert!(matches!(err, RoomError::Forbidden(_)), "{err}");

    // v11: the field is just content.
    let room = room_with(&rooms, version(11), "public", extra()).await;
    send(&rooms, &room, &bob, member(&bob, "join")).await;
    refused(
        &rooms,
        &room,
        &bob,
        plain(json!({ alice.as_str(): 100, carol.as_str(): 50 })),
        "v11: \"additional creator\" bob changes power levels",
        "send event of type `m.room.power_levels`",
    )
    .await;
}
