//! Password hashing with argon2id, off the async executor and bounded in parallel.

use std::sync::Arc;

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::AccountError;

/// Argon2id cost parameters for new hashes. Existing hashes carry their own parameters, so
/// raising these later only affects passwords set afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordHashing {
    /// Memory per hash, in KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for PasswordHashing {
    /// OWASP's minimum recommendation for argon2id: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl PasswordHashing {
    /// The cheapest parameters argon2 accepts. For tests only: such hashes are easy to crack.
    pub fn insecure_fast_for_tests() -> Self {
        Self {
            memory_kib: Params::MIN_M_COST,
            iterations: 1,
            parallelism: 1,
        }
    }

    /// Whether argon2 accepts these parameters (for config validation at start-up).
    pub fn validate(&self) -> Result<(), String> {
        self.params().map(|_| ())
    }

    fn params(&self) -> Result<Params, String> {
        Params::new(self.memory_kib, self.iterations, self.parallelism, None).map_err(|e| {
            format!(
                "argon2 parameters (memory {} KiB, {} iterations, {} lanes): {e}",
                self.memory_kib, self.iterations, self.parallelism
            )
        })
    }
}

/// Runs hashes on the blocking pool, at most one per core at a time: each holds
/// `memory_kib` of memory, and a burst of logins must not exhaust a small machine.
#[derive(Debug, Clone)]
pub(crate) struct Hasher {
    hashing: PasswordHashing,
    permits: Arc<Semaphore>,
}

impl Hasher {
    pub(crate) fn new(hashing: PasswordHashing) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Self {
            hashing,
            permits: Arc::new(Semaphore::new(cores)),
        }
    }

    /// A PHC string (`$argon2id$v=19$m=…`) with a fresh random salt.
    pub(crate) async fn hash(&self, password: &str) -> Result<String, AccountError> {
        let params = self.hashing.params().map_err(AccountError::Internal)?;
        let password = password.to_owned();
        self.run(move || {
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| AccountError::Internal(format!("argon2 hashing: {e}")))
        })
        .await
    }

    /// Whether the password matches the PHC string (with the parameters stored in it).
    pub(crate) async fn verify(&self, password: &str, hash: &str) -> Result<bool, AccountError> {
        let password = password.to_owned();
        let hash = hash.to_owned();
        self.run(move || {
            match Argon2::default().verify_password(password.as_bytes(), hash.as_str()) {
                Ok(()) => Ok(true),
                Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
                Err(e) => Err(AccountError::Internal(format!(
                    "stored password hash cannot be checked: {e}"
                ))),
            }
        })
        .await
    }

    async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, AccountError> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|e| AccountError::Internal(format!("password hashing stopped: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job()
        })
        .await
        .map_err(|e| AccountError::Internal(format!("password hashing task failed: {e}")))?
    }
}
