//! Local accounts: registration, password login, access tokens, devices.
//!
//! Passwords are hashed with argon2id on the blocking pool; access tokens are random, handed to
//! the client once and stored only as their SHA-256 hash. Every failure is an [`AccountError`],
//! which `hearth-api` maps to a Matrix error.

mod error;
mod openid;
mod password;
mod registration_tokens;
mod secrets;
mod username;

use hearth_store::{NewSession, NewUser, RemoveDevices, Store, StoreError, StoredDevice};
use ruma::{DeviceId, OwnedDeviceId, OwnedServerName, OwnedUserId, ServerName, UserId};
use tokio::sync::OnceCell;

pub use error::AccountError;
pub use openid::{OPENID_TOKEN_LIFETIME, OpenIdTokens};
pub use password::PasswordHashing;
pub use registration_tokens::{RegistrationToken, is_registration_token_syntax};
pub use secrets::hash_access_token;

use password::Hasher;

/// The device a registration or login signs in.
#[derive(Debug, Clone, Default)]
pub struct DeviceRequest {
    /// Reuse this device (its old access tokens are revoked); a new id is generated if `None`.
    pub device_id: Option<OwnedDeviceId>,
    /// The name of a new device; a known device keeps its name.
    pub display_name: Option<String>,
    /// Registration only: create the account without signing in a device.
    pub inhibit_login: bool,
    /// The client asked for a refresh token: the access token then expires after
    /// [`ACCESS_TOKEN_LIFETIME`] and the refresh token buys a new pair.
    pub refresh_token: bool,
}

/// How long an access token of a refreshable session lives.
pub const ACCESS_TOKEN_LIFETIME: std::time::Duration = std::time::Duration::from_secs(5 * 60);

/// A signed-in device. The access token is shown to the client once and not kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    pub access_token: String,
    /// Set for refreshable sessions.
    pub refresh_token: Option<String>,
    /// How long the access token lives, for refreshable sessions.
    pub expires_in: Option<std::time::Duration>,
}

/// A new account, signed in unless the request inhibited login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    pub user_id: OwnedUserId,
    pub session: Option<Session>,
}

/// Who an access token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub user_id: OwnedUserId,
    pub device_id: OwnedDeviceId,
    pub is_admin: bool,
    /// A guest account (`kind=guest`): the API limits what it may call.
    pub is_guest: bool,
}

/// One of a user's devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub device_id: OwnedDeviceId,
    pub display_name: Option<String>,
    /// Milliseconds since the Unix epoch, if known.
    pub last_seen_ms: Option<i64>,
}

impl From<StoredDevice> for Device {
    fn from(d: StoredDevice) -> Self {
        Self {
            device_id: d.device_id,
            display_name: d.display_name,
            last_seen_ms: d.last_seen_ms,
        }
    }
}

/// The accounts service: cheap to clone.
#[derive(Debug, Clone)]
pub struct Accounts {
    store: Store,
    server_name: OwnedServerName,
    hasher: Hasher,
    /// A hash of a random password, verified against when a login names no usable account so
    /// that such a login takes as long as a wrong password (no user enumeration by timing).
    decoy: std::sync::Arc<OnceCell<String>>,
    /// Live OpenID tokens.
    openid: OpenIdTokens,
}

impl Accounts {
    pub fn new(store: Store, server_name: OwnedServerName, hashing: PasswordHashing) -> Self {
        Self {
            store,
            server_name,
            hasher: Hasher::new(hashing),
            decoy: std::sync::Arc::default(),
            openid: OpenIdTokens::default(),
        }
    }

    /// The OpenID tokens users hand to third parties.
    pub fn openid(&self) -> &OpenIdTokens {
        &self.openid
    }

    /// The server whose accounts these are.
    pub fn server_name(&self) -> &ServerName {
        &self.server_name
    }

    /// Create an account `@localpart:server_name` and, unless `device.inhibit_login`, sign in a
    /// device. `password: None` creates an account that cannot log in with a password.
    pub async fn register(
        &self,
        localpart: &str,
        password: Option<&str>,
        device: DeviceRequest,
        admin: bool,
    ) -> Result<Registered, AccountError> {
        let user_id = username::new_user_id(localpart, &self.server_name)?;
        // Spare the hashing cost for a name that is plainly taken; the insert below is what
        // settles a race.
        if self.store.user_exists(&user_id).await? {
            return Err(AccountError::UserInUse);
        }
        let password_hash = match password {
            Some(password) => Some(self.hasher.hash(password).await?),
            None => None,
        };
        let (new_session, session) = if device.inhibit_login {
            (None, None)
        } else {
            let (new, session) = new_session(&user_id, device);
            (Some(new), Some(session))
        };
        let user = NewUser {
            user_id: user_id.clone(),
            password_hash,
            is_admin: admin,
            is_guest: false,
        };
        match self.store.create_user(&user, new_session.as_ref()).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Err(AccountError::UserInUse),
            Err(e) => return Err(e.into()),
        }
        tracing::info!(%user_id, admin, "registered user");
        Ok(Registered { user_id, session })
    }

    /// Register a guest account (`kind=guest`): no password, a generated user id, and a
    /// signed-in device.
    pub async fn register_guest(&self, device: DeviceRequest) -> Result<Registered, AccountError> {
        // A generated name may (rarely) be taken: try a few.
        for _ in 0..5 {
            let localpart = format!("guest-{}", secrets::new_guest_suffix());
            let user_id = username::new_user_id(&localpart, &self.server_name)?;
            let (new, session) = new_session(&user_id, device.clone());
            let user = NewUser {
                user_id: user_id.clone(),
                password_hash: None,
                is_admin: false,
                is_guest: true,
            };
            match self.store.create_user(&user, Some(&new)).await {
                Ok(()) => {
                    tracing::info!(%user_id, "registered guest");
                    return Ok(Registered {
                        user_id,
                        session: Some(session),
                    });
                }
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AccountError::Internal(
            "no free guest user id after five tries".into(),
        ))
    }

    /// Upgrade a guest account to a full one with a password (the spec's `guest_access_token`
    /// registration), signing in a device unless `inhibit_login`. The guest's existing
    /// sessions keep working, now as a full account's.
    pub async fn upgrade_guest(
        &self,
        user_id: &UserId,
        password: &str,
        device: DeviceRequest,
    ) -> Result<Registered, AccountError> {
        let hash = self.hasher.hash(password).await?;
        if !self.store.upgrade_guest(user_id).await? {
            return Err(AccountError::Forbidden);
        }
        self.store
            .set_password_hash(user_id, Some(&hash), RemoveDevices::None)
            .await?;
        let session = if device.inhibit_login {
            None
        } else {
            let (new, session) = new_session(user_id, device);
            self.store.start_session(user_id, &new).await?;
            Some(session)
        };
        tracing::info!(%user_id, "guest upgraded to a full account");
        Ok(Registered {
            user_id: user_id.to_owned(),
            session,
        })
    }

    /// Whether `@localpart:server_name` is free to register.
    pub async fn available(&self, localpart: &str) -> Result<bool, AccountError> {
        let user_id = username::new_user_id(localpart, &self.server_name)?;
        Ok(!self.store.user_exists(&user_id).await?)
    }

    /// Log in with a password and sign in a device. A wrong password, an unknown user (local or
    /// not) and a deactivated user all give [`AccountError::Forbidden`].
    pub async fn login_password(
        &self,
        user_id: &UserId,
        password: &str,
        device: DeviceRequest,
    ) -> Result<Session, AccountError> {
        let stored = if user_id.server_name() == self.server_name {
            self.store.user(user_id).await?
        } else {
            None
        };
        let hash = stored
            .filter(|u| !u.deactivated)
            .and_then(|u| u.password_hash);
        let valid = match hash {
            Some(hash) => self.hasher.verify(password, &hash).await?,
            None => {
                let decoy = self.decoy_hash().await?;
                self.hasher.verify(password, decoy).await?;
                false
            }
        };
        if !valid {
            return Err(AccountError::Forbidden);
        }
        let (new, session) = new_session(user_id, device);
        self.store.start_session(user_id, &new).await?;
        Ok(session)
    }

    /// The owner of an access token. Tokens of deactivated accounts are refused too.
    pub async fn authenticate(&self, token: &str) -> Result<Authenticated, AccountError> {
        let hash = hash_access_token(token);
        match self.store.access_token(&hash).await? {
            Some(owner) if owner.expires_at_ms.is_some_and(|at| at <= now_ms()) => {
                Err(AccountError::TokenExpired)
            }
            Some(owner) if !owner.deactivated => {
                if owner.retires_refresh {
                    // The client has the new tokens: the old refresh token can go.
                    self.store.retire_refreshed(&hash).await?;
                }
                Ok(Authenticated {
                    user_id: owner.user_id,
                    device_id: owner.device_id,
                    is_admin: owner.is_admin,
                    is_guest: owner.is_guest,
                })
            }
            _ => Err(AccountError::UnknownToken),
        }
    }

    /// Trade a refresh token for a new access token and refresh token of the same device.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Session, AccountError> {
        let request = DeviceRequest {
            refresh_token: true,
            ..DeviceRequest::default()
        };
        // The user id is only known after the lookup; the placeholder is replaced below.
        let placeholder = UserId::parse_with_server_name("refresh", &self.server_name)
            .map_err(|e| AccountError::Internal(e.to_string()))?;
        let (stored, mut session) = new_session(&placeholder, request);
        let (user, device) = self
            .store
            .refresh_session(&hash_access_token(refresh_token), &stored)
            .await?
            .ok_or(AccountError::UnknownToken)?;
        session.user_id = user;
        session.device_id = device;
        Ok(session)
    }

    /// Log out the token's device: the device and its tokens are deleted (as `/logout` asks).
    pub async fn logout(&self, token: &str) -> Result<(), AccountError> {
        let owner = self
            .store
            .access_token(&hash_access_token(token))
            .await?
            .ok_or(AccountError::UnknownToken)?;
        self.store
            .delete_device(&owner.user_id, &owner.device_id)
            .await?;
        Ok(())
    }

    /// Log out every device of the user (as `/logout/all` asks).
    pub async fn logout_all(&self, user_id: &UserId) -> Result<(), AccountError> {
        self.store.delete_user_devices(user_id, None).await?;
        Ok(())
    }

    /// Whether the password is the user's (for user-interactive authentication). `false` for
    /// unknown, deactivated and password-less accounts.
    pub async fn check_password(
        &self,
        user_id: &UserId,
        password: &str,
    ) -> Result<bool, AccountError> {
        match self.store.user(user_id).await? {
            Some(user) if !user.deactivated => match user.password_hash {
                Some(hash) => self.hasher.verify(password, &hash).await,
                None => Ok(false),
            },
            _ => Ok(false),
        }
    }

    /// Set a new password. With `logout_devices`, every other device is logged out (all of them
    /// if `keep_device` is `None`), in the same transaction as the change.
    pub async fn change_password(
        &self,
        user_id: &UserId,
        new_password: &str,
        logout_devices: bool,
        keep_device: Option<&DeviceId>,
    ) -> Result<(), AccountError> {
        let hash = self.hasher.hash(new_password).await?;
        let remove = match (logout_devices, keep_device) {
            (false, _) => RemoveDevices::None,
            (true, None) => RemoveDevices::All,
            (true, Some(keep)) => RemoveDevices::AllExcept(keep),
        };
        if !self
            .store
            .set_password_hash(user_id, Some(&hash), remove)
            .await?
        {
            return Err(AccountError::NotFound);
        }
        Ok(())
    }

    /// Deactivate the account for good: it can no longer log in, all its devices and tokens are
    /// removed, and its id stays taken.
    pub async fn deactivate(&self, user_id: &UserId) -> Result<(), AccountError> {
        if !self.store.set_deactivated(user_id, true).await? {
            return Err(AccountError::NotFound);
        }
        tracing::info!(%user_id, "deactivated user");
        Ok(())
    }

    /// The user's devices, ordered by device id.
    pub async fn devices(&self, user_id: &UserId) -> Result<Vec<Device>, AccountError> {
        Ok(self
            .store
            .devices(user_id)
            .await?
            .into_iter()
            .map(Device::from)
            .collect())
    }

    /// One of the user's devices.
    pub async fn device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
    ) -> Result<Device, AccountError> {
        self.store
            .device(user_id, device_id)
            .await?
            .map(Device::from)
            .ok_or(AccountError::NotFound)
    }

    /// Set or (with `None`) clear a device's display name.
    pub async fn rename_device(
        &self,
        user_id: &UserId,
        device_id: &DeviceId,
        display_name: Option<&str>,
    ) -> Result<(), AccountError> {
        if !self
            .store
            .rename_device(user_id, device_id, display_name)
            .await?
        {
            return Err(AccountError::NotFound);
        }
        Ok(())
    }

    /// Delete devices (logging them out); ids the user does not have are ignored.
    pub async fn delete_devices(
        &self,
        user_id: &UserId,
        device_ids: &[OwnedDeviceId],
    ) -> Result<(), AccountError> {
        self.store.delete_devices(user_id, device_ids).await?;
        Ok(())
    }

    async fn decoy_hash(&self) -> Result<&str, AccountError> {
        let hash = self
            .decoy
            .get_or_try_init(|| async { self.hasher.hash(&secrets::new_access_token()).await })
            .await?;
        Ok(hash)
    }
}

fn now_ms() -> i64 {
    i64::from(ruma::MilliSecondsSinceUnixEpoch::now().get())
}

/// A fresh token for the requested (or a new) device: what to store and what to tell the client.
fn new_session(user_id: &UserId, device: DeviceRequest) -> (NewSession, Session) {
    let device_id = device.device_id.unwrap_or_else(secrets::new_device_id);
    let access_token = secrets::new_access_token();
    let refresh_token = device.refresh_token.then(secrets::new_access_token);
    let lifetime = ACCESS_TOKEN_LIFETIME;
    let stored = NewSession {
        device_id: device_id.clone(),
        display_name: device.display_name,
        token_hash: hash_access_token(&access_token),
        expires_at_ms: refresh_token.as_ref().map(|_| {
            now_ms().saturating_add(i64::try_from(lifetime.as_millis()).unwrap_or(i64::MAX))
        }),
        refresh_token_hash: refresh_token.as_deref().map(hash_access_token),
    };
    let session = Session {
        user_id: user_id.to_owned(),
        device_id,
        access_token,
        expires_in: refresh_token.as_ref().map(|_| lifetime),
        refresh_token,
    };
    (stored, session)
}
