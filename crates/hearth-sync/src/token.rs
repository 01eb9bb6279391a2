//! Sync tokens: the position of every stream a client syncs on,
//! `s{events}_{typing}_{account_data}_{receipts}_{presence}_{to_device}_{device_lists}`. Tokens that don't parse are refused
//! (M_INVALID_PARAM), not guessed at; missing trailing parts read as 0, so older tokens of
//! this server stay valid.

use std::fmt;

/// Where a client is in each stream.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncToken {
    /// The global event stream position.
    pub events: i64,
    /// The typing notification serial (in-memory; a restart resets it, which only costs a
    /// redundant typing update).
    pub typing: u64,
    /// The account data stream position.
    pub account_data: i64,
    /// The receipt stream position.
    pub receipts: i64,
    /// The presence serial (in memory, like typing's).
    pub presence: u64,
    /// The to-device position this device has seen (syncing from it acknowledges the messages
    /// up to it).
    pub to_device: i64,
    /// The device-list stream position.
    pub device_lists: i64,
}

impl fmt::Display for SyncToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "s{}_{}_{}_{}_{}_{}_{}",
            self.events,
            self.typing,
            self.account_data,
            self.receipts,
            self.presence,
            self.to_device,
            self.device_lists
        )
    }
}

impl std::str::FromStr for SyncToken {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        let mut parts = s.strip_prefix('s').ok_or(())?.split('_');
        let events = parts.next().ok_or(())?.parse::<i64>().map_err(|_| ())?;
        let mut next = || -> Result<i64, ()> {
            match parts.next() {
                Some(n) => n.parse().ok().filter(|n: &i64| *n >= 0).ok_or(()),
                None => Ok(0),
            }
        };
        let typing = u64::try_from(next()?).map_err(|_| ())?;
        let account_data = next()?;
        let receipts = next()?;
        let presence = u64::try_from(next()?).map_err(|_| ())?;
        let to_device = next()?;
        let device_lists = next()?;
        if parts.next().is_some() || events < 0 {
            return Err(());
        }
        Ok(Self {
            events,
            typing,
            account_data,
            receipts,
            presence,
            to_device,
            device_lists,
        })
    }
}

/// A pagination token for /messages: a position in the event stream, `t{position}`. Events
/// strictly before it come next when paginating backwards, at or after it going forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaginationToken(pub i64);

impl fmt::Display for PaginationToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t{}", self.0)
    }
}

impl std::str::FromStr for PaginationToken {
    type Err = ();

    /// `t{n}`, or a sync token (its event position + 1, so that paginating back from a sync's
    /// `next_batch` starts with the newest event).
    fn from_str(s: &str) -> Result<Self, ()> {
        if let Some(n) = s.strip_prefix('t') {
            return n.parse().ok().filter(|n: &i64| *n >= 0).map(Self).ok_or(());
        }
        s.parse::<SyncToken>()
            .ok()
            .and_then(|t| t.events.checked_add(1))
            .map(Self)
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_junk() {
        let token = SyncToken {
            events: 42,
            typing: 7,
            account_data: 3,
            receipts: 9,
            presence: 11,
            to_device: 13,
            device_lists: 2,
        };
        assert_eq!(token.to_string().parse::<SyncToken>(), Ok(token));
        let short = SyncToken {
            events: 5,
            typing: 0,
            account_data: 0,
            receipts: 0,
            presence: 0,
            to_device: 0,
            device_lists: 0,
        };
        assert_eq!("s5".parse::<SyncToken>(), Ok(short));
        for bad in [
            "",
            "s",
            "x5_1",
            "s-1_0",
            "s1_2_3_4_5_6_7_8",
            "s1_x",
            "s1_2_-3",
        ] {
            assert!(bad.parse::<SyncToken>().is_err(), "{bad}");
        }
        assert_eq!("t9".parse::<PaginationToken>(), Ok(PaginationToken(9)));
        assert_eq!("s9_3_1".parse::<PaginationToken>(), Ok(PaginationToken(10)));
        assert!("t-1".parse::<PaginationToken>().is_err());
    }
}
