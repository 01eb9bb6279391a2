//! A PDU from another server, checked as the spec's first steps say before anything else
//! looks at it: it is canonical JSON and well formed for its room version, every server that
//! must have signed it did (with a key valid when it was sent, from room version 5), and its
//! content hash matches — if not, it is used redacted. Events that need a signature from a
//! server that is not a partner are refused: nothing from a stranger enters a room.
//! <https://spec.matrix.org/v1.16/server-server-api/#checks-performed-on-receipt-of-a-pdu>

use ruma::room_version_rules::RoomVersionRules;
use ruma::serde::Base64;
use ruma::signatures::{PublicKeyMap, PublicKeySet, Verified};
use ruma::{CanonicalJsonObject, CanonicalJsonValue};
use serde_json::value::RawValue;

use hearth_rooms::Pdu;

use crate::{Federation, FederationError};

/// Why a PDU was refused; the transaction answers it for that PDU alone.
#[derive(Debug, thiserror::Error)]
pub enum PduError {
    /// Not canonical JSON (a float, an integer past 2^53, a duplicate key), or not a valid
    /// event of its room version.
    #[error("malformed PDU: {0}")]
    Format(String),
    /// A signature is missing or wrong, or a key could not be had.
    #[error("bad signature: {0}")]
    Signature(String),
    #[error(transparent)]
    Federation(#[from] FederationError),
}

impl Federation {
    /// This server's current and old public keys.
    fn own_keys(&self) -> PublicKeySet {
        let key = &self.inner.key;
        let mut set = PublicKeySet::new();
        if let Ok(public) = Base64::parse(key.public_key_base64()) {
            set.insert(key.key_id().to_string(), public);
        }
        for old in key.old_keys() {
            if let Ok(public) = Base64::parse(&old.public_key) {
                set.insert(old.key_id.to_string(), public);
            }
        }
        set
    }

    /// Steps 1 to 3 of receiving a PDU of a room with `rules`.
    pub async fn check_pdu(
        &self,
        raw: &RawValue,
        rules: &RoomVersionRules,
    ) -> Result<Pdu, PduError> {
        let object: CanonicalJsonObject = serde_json::from_str(raw.get())
            .map_err(|e| PduError::Format(format!("not canonical JSON: {e}")))?;
        let pdu = Pdu::from_canonical(object.clone(), rules)
            .map_err(|e| PduError::Format(e.to_string()))?;
        let servers = ruma::signatures::required_server_signatures_to_verify_event(
            &object,
            &rules.signatures,
        )
        .map_err(|e| PduError::Signature(e.to_string()))?;
        let Some(CanonicalJsonValue::Object(signatures)) = object.get("signatures") else {
            return Err(PduError::Signature("no signatures".into()));
        };
        // From room version 5 a key must have been valid when the event was sent.
        let at = if rules.enforce_key_validity {
            i64::from(pdu.origin_server_ts().get())
        } else {
            0
        };
        let mut keys = PublicKeyMap::new();
        for server in &servers {
            // Our own events come back to us (a room we left and join again): our keys.
            if server == self.policy().own_name() {
                keys.insert(server.to_string(), self.own_keys());
                continue;
            }
            // A stranger's signature is never needed: its events are refused here.
            self.policy().check(server)?;
            let Some(CanonicalJsonValue::Object(by_key)) = signatures.get(server.as_str()) else {
                return Err(PduError::Signature(format!("{server} did not sign it")));
            };
            let mut set = PublicKeySet::new();
            for key_id in by_key.keys() {
                if let Ok(key) = self.server_key(server, key_id, at).await {
                    set.insert(key_id.clone(), key);
                }
            }
            if set.is_empty() {
                return Err(PduError::Signature(format!(
                    "no key of {server} it was signed with is known to be valid then"
                )));
            }
            keys.insert(server.to_string(), set);
        }
        match ruma::signatures::verify_event(&keys, &object, rules) {
            Ok(Verified::All) => Ok(pdu),
            // Step 3: a content hash that does not match means the event is used redacted.
            Ok(Verified::Signatures) => pdu.redacted().map_err(|e| PduError::Format(e.to_string())),
            Err(e) => Err(PduError::Signature(e.to_string())),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::sync::Arc;

    use hearth_config::{FederationConfig, FederationMode};
    use hearth_keys::SigningKey;
    use hearth_store::ServerKeyRow;
    use ruma::{RoomVersionId, ServerName};
    use serde_json::json;

    use super::*;

    async fn federation(store: hearth_store::Store) -> Federation {
        let config = FederationConfig {
            mode: Some(FederationMode::Allowlist),
            allow: vec!["b.test".into()],
            ..FederationConfig::default()
        };
        let own = Arc::new(SigningKey::generate("a.test".try_into().unwrap()).unwrap());
        let rooms = hearth_rooms::Rooms::new(store, own.clone());
        Federation::new(&config, "a.test".try_into().unwrap(), own, rooms).unwrap()
    }

    /// A message from `@bob:<server>`, signed by `key`.
    fn signed_event(
        key: &SigningKey,
        server: &str,
        rules: &RoomVersionRules,
    ) -> CanonicalJsonObject {
        let value = json!({
            "room_id": "!room:a.test",
            "sender": format!("@bob:{server}"),
            "type": "m.room.message",
            "content": { "msgtype": "m.text", "body": "hello" },
            "prev_events": ["$prev"],
            "auth_events": ["$create"],
            "depth": 5,
            "origin_server_ts": 1_700_000_000_000_u64,
        });
        let mut object: CanonicalJsonObject = serde_json::from_value(value).unwrap();
        ruma::signatures::hash_and_sign_event(server, key.pair(), &mut object, &rules.redaction)
            .unwrap();
        object
    }

    fn raw(object: &CanonicalJsonObject) -> Box<RawValue> {
        serde_json::value::to_raw_value(object).unwrap()
    }

    #[tokio::test]
    async fn signed_events_of_partners_pass_and_others_do_not() {
        let test = hearth_store::testing::sqlite().await;
        let federation = federation(test.store.clone()).await;
        let rules = RoomVersionId::V10.rules().unwrap();
        let bob_server: &ServerName = "b.test".try_into().unwrap();
        let key = SigningKey::generate(bob_server).unwrap();
        // As if fetched from b.test: valid long after the events were sent.
        test.store
            .put_server_keys(
                bob_server,
                &[ServerKeyRow {
                    key_id: key.key_id().to_string(),
                    public_key: key.public_key_base64(),
                    valid_until_ts: i64::MAX,
                    expired_ts: None,
                }],
                0,
                "{}",
            )
            .await
            .unwrap();

        let event = signed_event(&key, "b.test", &rules);
        let pdu = federation.check_pdu(&raw(&event), &rules).await.unwrap();
        assert_eq!(pdu.content_json()["body"], "hello");

        // Content changed after signing: the hash fails, the event is used redacted.
        let mut tampered = event.clone();
        tampered.insert(
            "content".into(),
            serde_json::from_value(json!({ "msgtype": "m.text", "body": "changed" })).unwrap(),
        );
        let pdu = federation.check_pdu(&raw(&tampered), &rules).await.unwrap();
        assert_eq!(pdu.content_json(), json!({}));

        // A signed field changed: refused.
        let mut forged = event.clone();
        forged.insert("depth".into(), CanonicalJsonValue::Integer(6u32.into()));
        assert!(matches!(
            federation.check_pdu(&raw(&forged), &rules).await,
            Err(PduError::Signature(_))
        ));

        // No signature at all.
        let mut unsigned = event.clone();
        unsigned.remove("signatures");
        assert!(federation.check_pdu(&raw(&unsigned), &rules).await.is_err());

        // A stranger's event, however well signed.
        let evil = SigningKey::generate("evil.test".try_into().unwrap()).unwrap();
        let strange = signed_event(&evil, "evil.test", &rules);
        assert!(matches!(
            federation.check_pdu(&raw(&strange), &rules).await,
            Err(PduError::Federation(FederationError::NotAllowed(_)))
        ));

        // Our own event, come back: checked with our own key.
        let own = signed_event(&federation.inner.key, "a.test", &rules);
        assert!(federation.check_pdu(&raw(&own), &rules).await.is_ok());
        let impostor = SigningKey::generate("a.test".try_into().unwrap()).unwrap();
        let forged_own = signed_event(&impostor, "a.test", &rules);
        assert!(
            federation
                .check_pdu(&raw(&forged_own), &rules)
                .await
                .is_err()
        );

        // Not canonical JSON.
        let float = RawValue::from_string(
            r#"{"room_id":"!room:a.test","sender":"@bob:b.test","type":"m.room.message","content":{},"prev_events":[],"auth_events":[],"depth":1.5,"origin_server_ts":1}"#
                .to_owned(),
        )
        .unwrap();
        assert!(matches!(
            federation.check_pdu(&float, &rules).await,
            Err(PduError::Format(_))
        ));
    }
}
