//! Who this server federates with: nobody (`off`), the partners in `[federation] allow`
//! (`allowlist`, the default), or anybody (`open`). Every path in and out asks here first,
//! before any other work: no key fetch, no lookup, no database write for a stranger.

use std::collections::HashSet;

use hearth_config::FederationMode;
use ruma::{OwnedServerName, ServerName};

use crate::FederationError;

#[derive(Debug, Clone)]
pub struct Policy {
    own: OwnedServerName,
    mode: FederationMode,
    partners: HashSet<OwnedServerName>,
}

impl Policy {
    /// The policy of `[federation]`; an `allow` entry that is not a server name is an error.
    pub fn new(
        own: OwnedServerName,
        mode: FederationMode,
        allow: &[String],
    ) -> Result<Self, FederationError> {
        let partners = allow
            .iter()
            .map(|name| {
                OwnedServerName::try_from(name.as_str()).map_err(|e| {
                    FederationError::Config(format!(
                        "[federation] allow: {name:?} is not a server name: {e}"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            own,
            mode,
            partners,
        })
    }

    pub fn own_name(&self) -> &ServerName {
        &self.own
    }

    pub fn mode(&self) -> FederationMode {
        self.mode
    }

    /// Whether this server may talk with `server` at all.
    pub fn allows(&self, server: &ServerName) -> bool {
        server != self.own
            && match self.mode {
                FederationMode::Off => false,
                FederationMode::Allowlist => self.partners.contains(server),
                FederationMode::Open => true,
            }
    }

    /// [`Policy::allows`], as the error every path returns.
    pub fn check(&self, server: &ServerName) -> Result<(), FederationError> {
        if server == self.own {
            return Err(FederationError::Ourselves(server.to_owned()));
        }
        if self.allows(server) {
            Ok(())
        } else {
            Err(FederationError::NotAllowed(server.to_owned()))
        }
    }

    /// The partners named in `allow` (in `open` mode others are allowed too).
    pub fn partners(&self) -> impl Iterator<Item = &ServerName> {
        self.partners.iter().map(|s| &**s)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn policy(mode: FederationMode) -> Policy {
        Policy::new(
            "a.test".try_into().unwrap(),
            mode,
            &["b.test".to_owned(), "c.test:8448".to_owned()],
        )
        .unwrap()
    }

    #[test]
    fn only_partners_pass_the_allowlist() {
        let p = policy(FederationMode::Allowlist);
        assert!(p.allows("b.test".try_into().unwrap()));
        assert!(p.allows("c.test:8448".try_into().unwrap()));
        // A server name with a port is another server.
        assert!(!p.allows("c.test".try_into().unwrap()));
        assert!(!p.allows("evil.test".try_into().unwrap()));
        assert!(matches!(
            p.check("evil.test".try_into().unwrap()),
            Err(FederationError::NotAllowed(_))
        ));
    }

    #[test]
    fn off_allows_nobody_and_open_anybody_but_ourselves() {
        let off = policy(FederationMode::Off);
        assert!(!off.allows("b.test".try_into().unwrap()));
        let open = policy(FederationMode::Open);
        assert!(open.allows("evil.test".try_into().unwrap()));
        assert!(!open.allows("a.test".try_into().unwrap()));
        assert!(matches!(
            open.check("a.test".try_into().unwrap()),
            Err(FederationError::Ourselves(_))
        ));
    }

    #[test]
    fn a_bad_partner_name_is_a_config_error() {
        let err = Policy::new(
            "a.test".try_into().unwrap(),
            FederationMode::Allowlist,
            &["not a name".to_owned()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("[federation] allow"));
    }
}
