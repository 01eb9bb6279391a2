//! What an attacker or an unlucky client tries: forged restricted joins, malformed content,
//! and racing createRoom calls — over HTTP, on SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hearth_tests::api::{Api, errcode};
use hearth_tests::{Backend, TestServer, join_all, on_both_backends};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A room that lets in members of `allowed` (and, for `knock_restricted`, knockers).
async fn restricted_room(owner: &Api<'_>, rule: &str, allowed: &str) -> String {
    let body = owner
        .ok(
            Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(json!({
                "preset": "private_chat",
                "room_version": "12",
                "initial_state": [{
                    "type": "m.room.join_rules", "state_key": "",
                    "content": {"join_rule": rule, "allow": [
                        {"type": "m.room_membership", "room_id": allowed}
                    ]}
                }]
            })),
        )
        .await;
    body["room_id"].as_str().unwrap().to_owned()
}

async fn membership(reader: &Api<'_>, room: &str, user: &str) -> Value {
    let (_, body) = reader
        .get(&format!(
            "/_matrix/client/v3/rooms/{room}/state/m.room.member/{user}"
        ))
        .await;
    body
}

async fn restricted_joins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let mallory = Api::user(&server, "mallory").await;
    let bob = Api::user(&server, "bob").await;
    let club = alice.create_room("public_chat").await;
    for rule in ["restricted", "knock_restricted"] {
        let room = restricted_room(&alice, rule, &club).await;

        // An outsider's join is refused through every path, forged authoriser or not.
        let attempts = [
            (
                Method::POST,
                format!("/_matrix/client/v3/join/{room}"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/_matrix/client/v3/rooms/{room}/join"),
                json!({}),
            ),
            (
                Method::PUT,
                format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/@mallory:hearth.test"),
                json!({"membership": "join",
                       "join_authorised_via_users_server": "@alice:hearth.test"}),
            ),
        ];
        for (method, path, body) in attempts {
            let (status, answer) = mallory.call(method, &path, Some(body)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{rule} {path}: {answer}");
            assert_eq!(errcode(&answer), "M_FORBIDDEN");
        }
        let (status, _) = mallory
            .get(&format!("/_matrix/client/v3/rooms/{room}/messages?dir=b"))
            .await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{rule}: the outsider reads nothing"
        );
        assert_eq!(
            membership(&alice, &room, "@mallory:hearth.test").await["errcode"],
            "M_NOT_FOUND"
        );

        // A member of the allowed room gets in, vouched for by a local member who may invite,
        // whatever the client wrote.
        alice_or_bob_joins(&bob, &club).await;
        let (status, answer) = bob
            .put(
                &format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/@bob:hearth.test"),
                json!({"membership": "join",
                       "join_authorised_via_users_server": "@mallory:hearth.test"}),
            )
            .await;
        assert_eq!(status, 200, "{rule}: {answer}");
        let member = membership(&alice, &room, "@bob:hearth.test").await;
        assert_eq!(member["membership"], "join");
        assert_eq!(
            member["join_authorised_via_users_server"], "@alice:hearth.test",
            "{rule}"
        );
        // Leaving and coming back through /join works the same way.
        bob.ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/leave"),
            Some(json!({})),
        )
        .await;
        bob.ok(
            Method::POST,
            &format!("/_matrix/client/v3/join/{room}"),
            Some(json!({})),
        )
        .await;
        // Once joined, a profile change needs no authoriser and gets none.
        let (status, _) = bob
            .put(
                &format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/@bob:hearth.test"),
                json!({"membership": "join", "displayname": "Bob",
                       "join_authorised_via_users_server": "@mallory:hearth.test"}),
            )
            .await;
        assert_eq!(status, 200);
        let member = membership(&alice, &room, "@bob:hearth.test").await;
        assert_eq!(member["displayname"], "Bob");
        assert!(
            member.get("join_authorised_via_users_server").is_none(),
            "{member}"
        );
        // Leave the club again for the next rule.
        bob.ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{club}/leave"),
            Some(json!({})),
        )
        .await;
    }
}
on_both_backends!(restricted_joins);

async fn alice_or_bob_joins(user: &Api<'_>, room: &str) {
    user.ok(
        Method::POST,
        &format!("/_matrix/client/v3/join/{room}"),
        Some(json!({})),
    )
    .await;
}

async fn malformed_content(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let room = alice.create_room("private_chat").await;
    let send = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message");
    let nested = format!(
        r#"{{"msgtype":"m.text","body":"x","deep":{}1{}}}"#,
        "[".repeat(150),
        "]".repeat(150)
    );
    let digits = format!(
        r#"{{"msgtype":"m.text","body":"x","n":{}}}"#,
        "7".repeat(5000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("deep nesting", nested.into_bytes(), "M_BAD_JSON"),
        ("1e400", br#"{"body":"x","n":1e400}"#.to_vec(), "M_BAD_JSON"),
        ("5,000 digits", digits.into_bytes(), "M_BAD_JSON"),
        ("a float", br#"{"body":"x","n":1.5}"#.to_vec(), "M_BAD_JSON"),
        (
            "2^60",
            br#"{"body":"x","n":1152921504606846976}"#.to_vec(),
            "M_BAD_JSON",
        ),
        (
            "lone surrogate",
            br#"{"body":"\ud800"}"#.to_vec(),
            "M_NOT_JSON",
        ),
        (
            "not UTF-8",
            b"{\"body\":\"\xff\xfe\"}".to_vec(),
            "M_NOT_JSON",
        ),
        ("not JSON", b"{\"body\":".to_vec(), "M_NOT_JSON"),
        ("empty", Vec::new(), "M_NOT_JSON"),
        ("an array", b"[1]".to_vec(), "M_BAD_JSON"),
    ];
    for (i, (what, body, expected)) in cases.into_iter().enumerate() {
        let (status, answer) = alice
            .raw(Method::PUT, &format!("{send}/bad{i}"), body)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {answer}");
        assert_eq!(errcode(&answer), expected, "{what}: {answer}");
    }
    let levels = format!("/_matrix/client/v3/rooms/{room}/state/m.room.power_levels/");
    for body in [
        br#"{"users_default":1e400}"#.to_vec(),
        format!(r#"{{"users_default":{}}}"#, "9".repeat(5000)).into_bytes(),
        Vec::new(),
    ] {
        let (status, answer) = alice.raw(Method::PUT, &levels, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    }
    let data = "/_matrix/client/v3/user/@alice:hearth.test/account_data/org.example";
    let (status, answer) = alice.raw(Method::PUT, data, Vec::new()).await;
    assert_eq!(
        (status, errcode(&answer)),
        (StatusCode::BAD_REQUEST, "M_NOT_JSON")
    );

    // A login without a type once made ruma's parser panic and dropped the connection.
    let (status, answer) = Api::new(&server, None)
        .post(
            "/_matrix/client/v3/login",
            json!({"identifier": {"type": "m.id.user", "user": "alice"}}),
        )
        .await;
    assert_eq!(
        (status, errcode(&answer)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON"),
        "{answer}"
    );

    // Nothing of it was stored, and the room works on.
    alice.send_text(&room, "still here").await;
    let sync = alice.sync(None, 0).await;
    let timeline = &sync["rooms"]["join"][&room]["timeline"]["events"];
    let bodies: Vec<_> = timeline
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "m.room.message")
        .map(|e| e["content"]["body"].clone())
        .collect();
    assert_eq!(bodies, vec![json!("still here")]);
}
on_both_backends!(malformed_content);

async fn concurrent_create_room(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let request = json!({"preset": "private_chat", "room_version": "12", "name": "same"});
    let creates = (0..20).map(|_| {
        alice.call(
            Method::POST,
            "/_matrix/client/v3/createRoom",
            Some(request.clone()),
        )
    });
    let mut rooms = std::collections::BTreeSet::new();
    for (status, body) in join_all(creates).await {
        assert_eq!(status, 200, "{body}");
        rooms.insert(body["room_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(rooms.len(), 20, "twenty requests make twenty rooms");

    // A malformed override is refused before anything of the room is written.
    let before = joined_rooms(&alice).await;
    for over in [
        json!({"users_default": "high"}),
        json!({"users": {"not a user id": 50}}),
        json!({"events": []}),
        json!({"ban": 1.5}),
        json!({"users": {"@alice:hearth.test": 100}}),
    ] {
        let (status, body) = alice
            .post(
                "/_matrix/client/v3/createRoom",
                json!({"room_version": "12", "power_level_content_override": over}),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{over}: {body}");
    }
    assert_eq!(joined_rooms(&alice).await, before, "no half-made rooms");
}

async fn joined_rooms(api: &Api<'_>) -> usize {
    let body = api
        .ok(Method::GET, "/_matrix/client/v3/joined_rooms", None)
        .await;
    body["joined_rooms"].as_array().unwrap().len()
}
on_both_backends!(concurrent_create_room);

async fn pathological_push_rules(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let rules = "/_matrix/client/v3/pushrules/global";
    let huge = "a".repeat(20_000);
    let wild = "*a".repeat(3_000);
    let refused = [
        (
            format!("{rules}/content/huge"),
            json!({"pattern": huge, "actions": ["notify"]}),
        ),
        (
            format!("{rules}/override/wild"),
            json!({"actions": ["notify"], "conditions": [
                {"kind": "event_match", "key": "content.body", "pattern": wild}
            ]}),
        ),
        (
            format!("{rules}/override/many"),
            json!({"actions": ["notify"], "conditions":
                vec![json!({"kind": "event_match", "key": "type", "pattern": "m.*"}); 50]}),
        ),
    ];
    for (path, body) in refused {
        let (status, answer) = alice.put(&path, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
    }
    // A user's own rules are bounded in number too.
    for i in 0..200 {
        let (status, answer) = alice
            .put(
                &format!("{rules}/content/word{i}"),
                json!({"pattern": format!("word{i}"), "actions": ["notify"]}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
    }
    let (status, _) = alice
        .put(
            &format!("{rules}/content/one-too-many"),
            json!({"pattern": "x", "actions": ["notify"]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A costly rule stored before the bounds existed is ignored, not evaluated: bob's messages
    // still reach alice's sync, with her unread counts.
    let user = ruma::UserId::parse("@bob:hearth.test").unwrap();
    let stored = json!({"global": {"content": [
        {"rule_id": "evil", "pattern": "b".repeat(20_000), "actions": ["notify"],
         "default": false, "enabled": true},
        {"rule_id": "wild", "pattern": "*b".repeat(3_000), "actions": ["notify"],
         "default": false, "enabled": true}
    ]}});
    server
        .store()
        .update_account_data(&user, None, "m.push_rules", |_| Some(stored.to_string()))
        .await
        .unwrap();
    let room = alice.create_room("public_chat").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/join/{room}"),
        Some(json!({})),
    )
    .await;
    alice.send_text(&room, "bbbbbbbb").await;
    let sync = bob.sync(None, 0).await;
    let joined = &sync["rooms"]["join"][&room];
    assert!(joined["unread_notifications"].is_object(), "{joined}");
    let (status, listed) = bob.get("/_matrix/client/v3/pushrules/").await;
    assert_eq!(status, 200);
    let content = listed["global"]["content"].as_array().unwrap();
    assert!(
        content
            .iter()
            .all(|r| r["rule_id"] != "evil" && r["rule_id"] != "wild")
    );
}
on_both_backends!(pathological_push_rules);

async fn small_error_codes(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let room = alice.create_room("private_chat").await;
    let (status, body) = alice
        .get("/_matrix/client/v3/sync?timeout=0&filter=%7Bnot%20json")
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_BAD_JSON"),
        "{body}"
    );
    let (status, body) = alice
        .get("/_matrix/client/v3/sync?timeout=0&filter=12345")
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::NOT_FOUND, "M_NOT_FOUND"),
        "{body}"
    );
    let alias = "/_matrix/client/v3/directory/room/%23club:elsewhere.example";
    let (status, body) = alice.put(alias, json!({"room_id": room})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        "{body}"
    );
    let (status, body) = alice.delete(alias, json!({})).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_INVALID_PARAM"),
        "{body}"
    );
    // Push-rule paths: the slash forms work, malformed ones are 400 M_UNRECOGNIZED.
    for path in [
        "/_matrix/client/v3/pushrules/",
        "/_matrix/client/v3/pushrules/global/",
    ] {
        assert_eq!(alice.get(path).await.0, 200, "{path}");
    }
    for path in [
        "/_matrix/client/v3/pushrules",
        "/_matrix/client/v3/pushrules/global",
        "/_matrix/client/v3/pushrules/device/",
        "/_matrix/client/v3/pushrules/global/override",
        "/_matrix/client/v3/pushrules/global/nokind/x",
        "/_matrix/client/v3/pushrules/global/override/.m.rule.master/nope",
    ] {
        let (status, body) = alice.get(path).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::BAD_REQUEST, "M_UNRECOGNIZED"),
            "{path}: {body}"
        );
    }
    let (status, _) = alice
        .get("/_matrix/client/v3/pushrules/global/override/no.such.rule")
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
on_both_backends!(small_error_codes);

/// An invitee or knocker reading `/context` of their own membership event sees their own
/// event, not the room's state behind the history visibility.
async fn context_shows_only_visible_state(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let eve = Api::user(&server, "eve").await;
    let kim = Api::user(&server, "kim").await;
    let room = alice.create_room("private_chat").await;
    alice
        .ok(
            Method::PUT,
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.history_visibility/"),
            Some(json!({"history_visibility": "joined"})),
        )
        .await;
    alice
        .ok(
            Method::PUT,
            &format!("/_matrix/client/v3/rooms/{room}/state/org.example.secret/"),
            Some(json!({"plans": "world domination"})),
        )
        .await;
    alice
        .ok(
            Method::PUT,
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.join_rules/"),
            Some(json!({"join_rule": "knock"})),
        )
        .await;
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/invite"),
            Some(json!({"user_id": "@eve:hearth.test"})),
        )
        .await;
    kim.ok(
        Method::POST,
        &format!("/_matrix/client/v3/knock/{room}"),
        Some(json!({})),
    )
    .await;
    for (reader, name) in [(&eve, "@eve:hearth.test"), (&kim, "@kim:hearth.test")] {
        let own = membership(&alice, &room, name).await;
        assert!(own["membership"].is_string());
        let sync = alice.sync(None, 0).await;
        let event_id = sync["rooms"]["join"][&room]["state"]["events"]
            .as_array()
            .into_iter()
            .flatten()
            .chain(
                sync["rooms"]["join"][&room]["timeline"]["events"]
                    .as_array()
                    .into_iter()
                    .flatten(),
            )
            .filter(|e| e["type"] == "m.room.member" && e["state_key"] == name)
            .filter_map(|e| e["event_id"].as_str())
            .next_back()
            .unwrap()
            .to_owned();
        let (status, context) = reader
            .get(&format!(
                "/_matrix/client/v3/rooms/{room}/context/{event_id}?limit=10"
            ))
            .await;
        assert_eq!(status, 200, "{context}");
        let state = context["state"].as_array().unwrap();
        for event in state {
            assert_eq!(
                (event["type"].as_str(), event["state_key"].as_str()),
                (Some("m.room.member"), Some(name)),
                "{name} sees state behind the history visibility: {event}"
            );
        }
        let leaked = context.to_string();
        assert!(!leaked.contains("world domination"), "{leaked}");
        assert!(!leaked.contains("m.room.power_levels"), "{leaked}");
    }
    // A member still gets the room's state.
    let sync = alice.sync(None, 0).await;
    let any = sync["rooms"]["join"][&room]["timeline"]["events"][0]["event_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let context = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/context/{any}"),
            None,
        )
        .await;
    assert!(context.to_string().contains("m.room.power_levels"));
}
on_both_backends!(context_shows_only_visible_state);

/// Behind a trusted proxy, per-address limits count the client `X-Forwarded-For` names; from
/// anyone else the header changes nothing.
async fn forwarded_for_from_trusted_proxies_only(backend: Backend) {
    let tight = hearth_config::RateLimit {
        per_second: 0.001,
        burst: 2,
    };
    for trusted in [true, false] {
        let server = TestServer::start_with(backend, |config| {
            config.rate_limits.register = tight;
            if trusted {
                config.server.trusted_proxies = vec!["127.0.0.0/8".into()];
            }
        })
        .await;
        let http = reqwest::Client::new();
        let register = |client: &'static str| {
            http.post(server.url("/_matrix/client/v3/register"))
                .header("x-forwarded-for", format!("198.51.100.1, {client}"))
                .json(&json!({"username": "someone", "password": "a long enough password"}))
                .send()
        };
        for _ in 0..2 {
            assert_eq!(register("203.0.113.1").await.unwrap().status(), 401);
        }
        assert_eq!(register("203.0.113.1").await.unwrap().status(), 429);
        let other = register("203.0.113.2").await.unwrap().status();
        if trusted {
            assert_eq!(
                other, 401,
                "another client behind the proxy has its own budget"
            );
        } else {
            assert_eq!(other, 429, "an untrusted peer cannot pick its address");
        }
    }
}
on_both_backends!(forwarded_for_from_trusted_proxies_only);

/// Bodies whose fields are all optional may be left out, as one widely used Python client does
/// for `POST /join`.
async fn optional_bodies_may_be_missing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let room = alice.create_room("public_chat").await;
    for path in [
        format!("/_matrix/client/v3/join/{room}"),
        format!("/_matrix/client/v3/rooms/{room}/leave"),
        format!("/_matrix/client/v3/rooms/{room}/join"),
        format!("/_matrix/client/v3/rooms/{room}/leave"),
        format!("/_matrix/client/v3/rooms/{room}/forget"),
        "/_matrix/client/v3/logout".to_owned(),
    ] {
        let (status, answer) = bob.raw(Method::POST, &path, Vec::new()).await;
        assert_eq!(status, 200, "{path}: {answer}");
    }
    assert!(!bob.token_works().await);
}
on_both_backends!(optional_bodies_may_be_missing);

/// Registration is user-interactive auth: username and password may come with any request of
/// the session, the first request's are remembered, and passwords may be any Unicode.
async fn registration_remembers_its_first_request(backend: Backend) {
    let server = TestServer::start(backend).await;
    let anon = Api::new(&server, None);
    let register = "/_matrix/client/v3/register";

    // Flows first, with nothing but a username: 401 and a session, not 400.
    let (status, challenge) = anon.post(register, json!({"username": "carol"})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{challenge}");
    let session = challenge["session"].as_str().unwrap();
    let (status, done) = anon
        .post(
            register,
            json!({"password": "пароль-密码-🔑", "auth": {"type": "m.login.dummy", "session": session}}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["user_id"], "@carol:hearth.test");

    // Everything in the first request, only the stage in the last.
    let (_, challenge) = anon
        .post(
            register,
            json!({"username": "dave", "password": "correct horse", "inhibit_login": true,
                   "initial_device_display_name": "terminal"}),
        )
        .await;
    let session = challenge["session"].as_str().unwrap();
    let (status, done) = anon
        .post(
            register,
            json!({"inhibit_login": true, "auth": {"type": "m.login.dummy", "session": session}}),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["user_id"], "@dave:hearth.test");
    assert!(done.get("access_token").is_none(), "inhibit_login: {done}");

    for (user, password) in [("carol", "пароль-密码-🔑"), ("dave", "correct horse")] {
        let (status, body) = anon
            .post(
                "/_matrix/client/v3/login",
                json!({"type": "m.login.password", "password": password,
                       "identifier": {"type": "m.id.user", "user": user}}),
            )
            .await;
        assert_eq!(status, 200, "{user}: {body}");
    }
    // Without a password by the last stage, the request is refused and the session kept.
    let (_, challenge) = anon.post(register, json!({"username": "erin"})).await;
    let session = challenge["session"].as_str().unwrap();
    let stage = json!({"auth": {"type": "m.login.dummy", "session": session}});
    let (status, body) = anon.post(register, stage.clone()).await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::BAD_REQUEST, "M_MISSING_PARAM")
    );
    let mut with_password = stage;
    with_password["password"] = json!("finally a password");
    let (status, body) = anon.post(register, with_password).await;
    assert_eq!(status, 200, "{body}");
    // Guests are not let in.
    let (status, body) = anon
        .post(&format!("{register}?kind=guest"), json!({}))
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_GUEST_ACCESS_FORBIDDEN")
    );
}
on_both_backends!(registration_remembers_its_first_request);

/// `/sync`'s `state` ends where the timeline starts: no event is in both (the create event
/// once was, in every initial sync of a new room).
async fn sync_state_never_repeats_the_timeline(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let room = alice.create_room("public_chat").await;
    alice.send_text(&room, "one").await;
    let lazy = "%7B%22room%22%3A%7B%22state%22%3A%7B%22lazy_load_members%22%3Atrue%7D%7D%7D";
    let short = "%7B%22room%22%3A%7B%22timeline%22%3A%7B%22limit%22%3A3%7D%7D%7D";
    for filter in ["", lazy, short] {
        let mut path = "/_matrix/client/v3/sync?timeout=0".to_owned();
        if !filter.is_empty() {
            path.push_str(&format!("&filter={filter}"));
        }
        let (status, sync) = alice.get(&path).await;
        assert_eq!(status, 200, "{sync}");
        let joined = &sync["rooms"]["join"][&room];
        let ids = |section: &str| -> std::collections::BTreeSet<String> {
            joined[section]["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["event_id"].as_str().unwrap().to_owned())
                .collect()
        };
        let (state, timeline) = (ids("state"), ids("timeline"));
        assert!(state.is_disjoint(&timeline), "filter {filter}: {joined}");
        // Between them, the room's state is all there.
        let types: Vec<_> = ["state", "timeline"]
            .iter()
            .flat_map(|s| joined[*s]["events"].as_array().unwrap().clone())
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect();
        assert!(
            types.iter().any(|t| t == "m.room.create"),
            "filter {filter}"
        );
    }
}
on_both_backends!(sync_state_never_repeats_the_timeline);

/// The limits on what one user could flood others with: each answers 429 past its burst, for
/// that user only.
async fn per_user_write_limits(backend: Backend) {
    let two = hearth_config::RateLimit {
        per_second: 0.001,
        burst: 2,
    };
    let server = TestServer::start_with(backend, |config| {
        let limits = &mut config.rate_limits;
        limits.membership = two;
        limits.profile = two;
        limits.settings = two;
        limits.ephemeral = two;
    })
    .await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let room = alice.create_room("public_chat").await;
    let me = "@alice:hearth.test";
    let requests: Vec<(&str, Method, String, Value)> = vec![
        (
            "membership",
            Method::POST,
            format!("/_matrix/client/v3/rooms/{room}/invite"),
            json!({"user_id": "@nobody:hearth.test"}),
        ),
        (
            "profile",
            Method::PUT,
            format!("/_matrix/client/v3/profile/{me}/displayname"),
            json!({"displayname": "Alice"}),
        ),
        (
            "settings",
            Method::PUT,
            format!("/_matrix/client/v3/user/{me}/account_data/org.example.a"),
            json!({"a": 1}),
        ),
        (
            "ephemeral",
            Method::PUT,
            format!("/_matrix/client/v3/rooms/{room}/typing/{me}"),
            json!({"typing": false}),
        ),
    ];
    for (limit, method, path, body) in requests {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(
                alice
                    .call(method.clone(), &path, Some(body.clone()))
                    .await
                    .0
                    .as_u16(),
            );
        }
        assert_eq!(statuses[2], 429, "{limit}: {statuses:?}");
        assert!(
            statuses[..2].iter().all(|s| *s != 429),
            "{limit}: {statuses:?}"
        );
    }
    // Bob has budgets of his own.
    let (status, _) = bob
        .post(&format!("/_matrix/client/v3/join/{room}"), json!({}))
        .await;
    assert_eq!(status, 200);
    // A membership change through the state endpoint counts like any other.
    let (status, body) = alice
        .put(
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.member/@bob:hearth.test"),
            json!({"membership": "leave"}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::TOO_MANY_REQUESTS, "M_LIMIT_EXCEEDED")
    );
}
on_both_backends!(per_user_write_limits);

/// Someone who left (or was kicked) still reads the room as it was when they left; someone who
/// never joined reads nothing, unless the room is world-readable.
async fn departed_members_read_up_to_their_leave(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let stranger = Api::user(&server, "stranger").await;
    let room = alice.create_room("public_chat").await;
    let topic = format!("/_matrix/client/v3/rooms/{room}/state/m.room.topic/");
    alice
        .ok(Method::PUT, &topic, Some(json!({"topic": "before"})))
        .await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/join/{room}"),
        Some(json!({})),
    )
    .await;
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/kick"),
            Some(json!({"user_id": "@bob:hearth.test"})),
        )
        .await;
    alice
        .ok(Method::PUT, &topic, Some(json!({"topic": "after"})))
        .await;

    let (status, content) = bob.get(&topic).await;
    assert_eq!(
        (status, content["topic"].as_str()),
        (StatusCode::OK, Some("before"))
    );
    let (status, all) = bob
        .get(&format!("/_matrix/client/v3/rooms/{room}/state"))
        .await;
    assert_eq!(status, 200, "{all}");
    assert!(all.to_string().contains("before") && !all.to_string().contains("after"));
    let (status, members) = bob
        .get(&format!("/_matrix/client/v3/rooms/{room}/members"))
        .await;
    assert_eq!(status, 200, "{members}");
    let (status, _) = stranger.get(&topic).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // World-readable: anyone reads the current state.
    alice
        .ok(
            Method::PUT,
            &format!("/_matrix/client/v3/rooms/{room}/state/m.room.history_visibility/"),
            Some(json!({"history_visibility": "world_readable"})),
        )
        .await;
    let (status, content) = stranger.get(&topic).await;
    assert_eq!(
        (status, content["topic"].as_str()),
        (StatusCode::OK, Some("after"))
    );
}
on_both_backends!(departed_members_read_up_to_their_leave);

/// A member who left reads the room's events up to their leave through `/event`, not after;
/// Element Web's start-up call for bridged protocols answers an empty object.
async fn departed_members_read_events_and_protocols(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let room = alice.create_room("public_chat").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/join/{room}"),
        Some(json!({})),
    )
    .await;
    let before = alice.send_text(&room, "while bob was here").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{room}/leave"),
        Some(json!({})),
    )
    .await;
    let after = alice.send_text(&room, "after bob left").await;
    let (status, event) = bob
        .get(&format!("/_matrix/client/v3/rooms/{room}/event/{before}"))
        .await;
    assert_eq!(status, 200, "{event}");
    let (status, _) = bob
        .get(&format!("/_matrix/client/v3/rooms/{room}/event/{after}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let protocols = bob
        .ok(Method::GET, "/_matrix/client/v3/thirdparty/protocols", None)
        .await;
    assert_eq!(protocols, json!({}));
}
on_both_backends!(departed_members_read_events_and_protocols);

/// Pushers are stored per device and listed; `append: false` takes a push key from other
/// users; `kind: null` deletes; they go with their device (logout, password change).
async fn pushers_are_kept_listed_and_removed(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let pushers = "/_matrix/client/v3/pushers";
    let set = "/_matrix/client/v3/pushers/set";
    let http = |key: &str, append: bool| {
        json!({"kind": "http", "app_id": "org.example.app", "pushkey": key,
               "app_display_name": "Example", "device_display_name": "phone", "lang": "en",
               "data": {"url": "https://push.example.org/_matrix/push/v1/notify",
                        "format": "event_id_only"},
               "append": append})
    };
    assert_eq!(
        alice.ok(Method::GET, pushers, None).await,
        json!({"pushers": []})
    );
    alice
        .ok(Method::POST, set, Some(http("key-1", false)))
        .await;
    let listed = alice.ok(Method::GET, pushers, None).await;
    let first = &listed["pushers"][0];
    assert_eq!(first["pushkey"], "key-1");
    assert_eq!(first["kind"], "http");
    assert_eq!(
        first["data"]["url"],
        "https://push.example.org/_matrix/push/v1/notify"
    );
    assert_eq!(first["app_display_name"], "Example");

    for (body, errcode_wanted) in [
        (
            json!({"kind": "http", "app_id": "a", "pushkey": "k", "app_display_name": "A",
                   "device_display_name": "d", "lang": "en",
                   "data": {"url": "https://push.example.org/somewhere"}}),
            "M_INVALID_PARAM",
        ),
        (
            json!({"kind": "email", "app_id": "m.email", "pushkey": "alice@example.org",
                   "app_display_name": "Email", "device_display_name": "d", "lang": "en",
                   "data": {}}),
            "M_THREEPID_NOT_FOUND",
        ),
    ] {
        let (status, answer) = alice.post(set, body).await;
        assert_eq!(
            (status, errcode(&answer)),
            (StatusCode::BAD_REQUEST, errcode_wanted),
            "{answer}"
        );
    }

    // The same push key by bob, appended: both keep it; not appended: alice loses it.
    bob.ok(Method::POST, set, Some(http("key-1", true))).await;
    assert_eq!(
        alice.ok(Method::GET, pushers, None).await["pushers"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    bob.ok(Method::POST, set, Some(http("key-1", false))).await;
    assert_eq!(
        alice.ok(Method::GET, pushers, None).await,
        json!({"pushers": []})
    );
    bob.ok(
        Method::POST,
        set,
        Some(json!({"kind": null, "app_id": "org.example.app", "pushkey": "key-1"})),
    )
    .await;
    assert_eq!(
        bob.ok(Method::GET, pushers, None).await,
        json!({"pushers": []})
    );

    // A password change signs out the other devices, and their pushers go with them.
    alice
        .ok(Method::POST, set, Some(http("key-2", false)))
        .await;
    let (status, session) = Api::new(&server, None)
        .post(
            "/_matrix/client/v3/login",
            json!({"type": "m.login.password", "password": "correct horse battery staple",
                   "identifier": {"type": "m.id.user", "user": "alice"}}),
        )
        .await;
    assert_eq!(status, 200, "{session}");
    let laptop = Api::new(&server, session["access_token"].as_str());
    let (status, answer) = laptop
        .post(
            "/_matrix/client/v3/account/password",
            json!({"new_password": "a brand new password",
                   "auth": {"type": "m.login.password", "password": "correct horse battery staple",
                            "identifier": {"type": "m.id.user", "user": "alice"}}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        laptop.ok(Method::GET, pushers, None).await,
        json!({"pushers": []})
    );
}
on_both_backends!(pushers_are_kept_listed_and_removed);

/// A new `m.room.canonical_alias` may only name aliases that exist and point at the room.
async fn canonical_alias_must_point_at_the_room(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let room = alice.create_room("public_chat").await;
    let other = alice.create_room("public_chat").await;
    for (alias, target) in [("#here:hearth.test", &room), ("#there:hearth.test", &other)] {
        alice
            .ok(
                Method::PUT,
                &format!(
                    "/_matrix/client/v3/directory/room/{}",
                    alias.replace('#', "%23")
                ),
                Some(json!({"room_id": target})),
            )
            .await;
    }
    let path = format!("/_matrix/client/v3/rooms/{room}/state/m.room.canonical_alias/");
    for content in [
        json!({"alias": "#missing:hearth.test"}),
        json!({"alias": "#there:hearth.test"}),
        json!({"alias": "#here:hearth.test", "alt_aliases": ["#there:hearth.test"]}),
        json!({"alias": "not an alias"}),
        json!({"alias": "#far:elsewhere.example"}),
        json!({"alt_aliases": "#here:hearth.test"}),
    ] {
        let (status, body) = alice.put(&path, content.clone()).await;
        assert_eq!(
            (status, errcode(&body)),
            (StatusCode::BAD_REQUEST, "M_BAD_ALIAS"),
            "{content}"
        );
    }
    alice
        .ok(
            Method::PUT,
            &path,
            Some(json!({"alias": "#here:hearth.test", "alt_aliases": ["#here:hearth.test"]})),
        )
        .await;
    // Deleting an alias takes it out of the canonical alias event.
    alice
        .ok(
            Method::DELETE,
            "/_matrix/client/v3/directory/room/%23here:hearth.test",
            None,
        )
        .await;
    let (status, content) = alice.get(&path).await;
    assert_eq!(status, 200);
    assert!(content.get("alias").is_none(), "{content}");
    assert_eq!(content["alt_aliases"], json!([]), "{content}");
    // Unsetting is always allowed.
    alice.ok(Method::PUT, &path, Some(json!({}))).await;
}
on_both_backends!(canonical_alias_must_point_at_the_room);

/// Setting identical state twice, or joining twice, answers with the event in force: no new
/// event for members to sync.
async fn identical_state_is_not_sent_again(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let room = alice.create_room("public_chat").await;
    let topic = format!("/_matrix/client/v3/rooms/{room}/state/m.room.topic/");
    let first = alice
        .ok(Method::PUT, &topic, Some(json!({"topic": "same"})))
        .await;
    let again = alice
        .ok(Method::PUT, &topic, Some(json!({"topic": "same"})))
        .await;
    assert_eq!(first["event_id"], again["event_id"]);
    let changed = alice
        .ok(Method::PUT, &topic, Some(json!({"topic": "new"})))
        .await;
    assert_ne!(first["event_id"], changed["event_id"]);

    let member_event = |state: &Value| {
        state
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "m.room.member" && e["state_key"] == "@bob:hearth.test")
            .map(|e| e["event_id"].clone())
    };
    let join = format!("/_matrix/client/v3/join/{room}");
    bob.ok(Method::POST, &join, Some(json!({}))).await;
    let state = format!("/_matrix/client/v3/rooms/{room}/state");
    let before = member_event(&bob.ok(Method::GET, &state, None).await);
    bob.ok(Method::POST, &join, Some(json!({}))).await;
    let after = member_event(&bob.ok(Method::GET, &state, None).await);
    assert!(before.is_some());
    assert_eq!(before, after, "joining twice made a second join event");
}
on_both_backends!(identical_state_is_not_sent_again);

/// `/kick` of someone not in the room is refused; `joined_members` writes both profile keys.
async fn membership_details(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let _bob = Api::user(&server, "bob").await;
    let room = alice.create_room("public_chat").await;
    let (status, body) = alice
        .post(
            &format!("/_matrix/client/v3/rooms/{room}/kick"),
            json!({"user_id": "@bob:hearth.test"}),
        )
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN"),
        "{body}"
    );
    // A ban of someone not in the room is allowed (a pre-emptive ban).
    alice
        .ok(
            Method::POST,
            &format!("/_matrix/client/v3/rooms/{room}/ban"),
            Some(json!({"user_id": "@bob:hearth.test"})),
        )
        .await;
    let members = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/joined_members"),
            None,
        )
        .await;
    let me = &members["joined"]["@alice:hearth.test"];
    assert!(
        me.get("display_name").is_some() && me.get("avatar_url").is_some(),
        "{members}"
    );
}
on_both_backends!(membership_details);

/// `GET /admin/whois` answers for oneself (and admins), not for others.
async fn whois_is_for_oneself_and_admins(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let _bob = Api::user(&server, "bob").await;
    let me = alice
        .ok(
            Method::GET,
            "/_matrix/client/v3/admin/whois/@alice:hearth.test",
            None,
        )
        .await;
    assert_eq!(me["user_id"], "@alice:hearth.test");
    let devices = me["devices"].as_object().unwrap();
    assert_eq!(devices.len(), 1, "{me}");
    assert!(devices.values().all(|d| d["sessions"].is_array()));
    let (status, body) = alice
        .get("/_matrix/client/v3/admin/whois/@bob:hearth.test")
        .await;
    assert_eq!(
        (status, errcode(&body)),
        (StatusCode::FORBIDDEN, "M_FORBIDDEN")
    );
}
on_both_backends!(whois_is_for_oneself_and_admins);

/// Messages and invites from ignored users never reach the user who ignores them.
async fn ignored_users_are_not_heard(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let bob = Api::user(&server, "bob").await;
    let room = alice.create_room("public_chat").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/join/{room}"),
        Some(json!({})),
    )
    .await;
    alice
        .ok(
            Method::PUT,
            "/_matrix/client/v3/user/@alice:hearth.test/account_data/m.ignored_user_list",
            Some(json!({"ignored_users": {"@bob:hearth.test": {}}})),
        )
        .await;
    bob.send_text(&room, "can you hear me").await;
    alice.send_text(&room, "quiet in here").await;
    let private = bob.create_room("private_chat").await;
    bob.ok(
        Method::POST,
        &format!("/_matrix/client/v3/rooms/{private}/invite"),
        Some(json!({"user_id": "@alice:hearth.test"})),
    )
    .await;

    let sync = alice.sync(None, 0).await;
    let bodies = |events: &Value| -> Vec<String> {
        events
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "m.room.message")
            .map(|e| e["content"]["body"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        bodies(&sync["rooms"]["join"][&room]["timeline"]["events"]),
        vec!["quiet in here"]
    );
    assert!(
        sync["rooms"]["invite"].get(&private).is_none(),
        "{}",
        sync["rooms"]["invite"]
    );
    let messages = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/messages?dir=b"),
            None,
        )
        .await;
    assert_eq!(bodies(&messages["chunk"]), vec!["quiet in here"]);
    // Nor is alice notified of them.
    let notifications = alice
        .ok(Method::GET, "/_matrix/client/v3/notifications", None)
        .await;
    let from_bob = notifications["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["event"]["sender"] == "@bob:hearth.test")
        .count();
    assert_eq!(from_bob, 0, "{notifications}");
    // Bob's membership (state) still counts: he is in the room.
    let members = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/joined_members"),
            None,
        )
        .await;
    assert!(members["joined"].get("@bob:hearth.test").is_some());

    // What bob says does not count as unread (in a room of two, it would notify).
    let since = sync["next_batch"].as_str().unwrap().to_owned();
    bob.send_text(&room, "still talking").await;
    let later = alice.sync(Some(&since), 0).await;
    let unread = &later["rooms"]["join"][&room]["unread_notifications"];
    assert!(
        unread.is_null() || unread["notification_count"] == 0,
        "{later}"
    );

    // Un-ignored: bob is heard again from then on, without what he said meanwhile.
    let since = later["next_batch"].as_str().unwrap().to_owned();
    alice
        .ok(
            Method::PUT,
            "/_matrix/client/v3/user/@alice:hearth.test/account_data/m.ignored_user_list",
            Some(json!({"ignored_users": {}})),
        )
        .await;
    bob.send_text(&room, "back").await;
    let heard = alice.sync(Some(&since), 0).await;
    let entry = &heard["rooms"]["join"][&room];
    assert_eq!(bodies(&entry["timeline"]["events"]), vec!["back"]);
    // Counted from the unread events as they are now: what bob said while ignored is unread
    // too, and counts again.
    assert_eq!(
        entry["unread_notifications"]["notification_count"], 2,
        "{entry}"
    );
}
on_both_backends!(ignored_users_are_not_heard);

/// createRoom commits the room whole or not at all: an initial event the auth rules refuse
/// (here a join on someone else's behalf) or one past the size limit refuses the room, and
/// nothing of it is left — no half-made room in the creator's list, their sync or the database.
async fn create_room_is_all_or_nothing(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = Api::user(&server, "alice").await;
    let _bob = Api::user(&server, "bob").await;
    let events_before = server.store().current_stream();
    let refused = [
        json!({
            "name": "Half made",
            "initial_state": [{
                "type": "m.room.member",
                "state_key": "@bob:hearth.test",
                "content": { "membership": "join" },
            }],
        }),
        json!({
            "name": "Too big",
            "initial_state": [{
                "type": "m.room.topic",
                "state_key": "",
                "content": { "topic": "x".repeat(70_000) },
            }],
        }),
    ];
    for body in refused {
        let (status, answer) = alice.post("/_matrix/client/v3/createRoom", body).await;
        assert!(status.is_client_error(), "{status} {answer}");
        assert!(!errcode(&answer).is_empty(), "{answer}");
    }
    let joined = alice
        .ok(Method::GET, "/_matrix/client/v3/joined_rooms", None)
        .await;
    assert_eq!(joined["joined_rooms"], json!([]), "{joined}");
    let sync = alice.sync(None, 0).await;
    assert!(
        sync["rooms"]["join"]
            .as_object()
            .is_none_or(|r| r.is_empty()),
        "{sync}"
    );
    assert_eq!(
        server.store().current_stream(),
        events_before,
        "no event of a refused room was stored"
    );

    // A good one commits every initial event at once, in order.
    let room = alice
        .create_room_with(json!({"name": "Whole", "topic": "all there"}))
        .await;
    let state = alice
        .ok(
            Method::GET,
            &format!("/_matrix/client/v3/rooms/{room}/state"),
            None,
        )
        .await;
    let types: Vec<&str> = state
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    for kind in [
        "m.room.create",
        "m.room.member",
        "m.room.power_levels",
        "m.room.join_rules",
        "m.room.name",
        "m.room.topic",
    ] {
        assert!(types.contains(&kind), "{kind} in {types:?}");
    }
}
on_both_backends!(create_room_is_all_or_nothing);
