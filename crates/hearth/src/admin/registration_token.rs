//! `hearth admin registration-token ...`: the tokens that let people register while
//! `[registration] token_required` is on.

use std::time::Duration;

use clap::Subcommand;
use hearth_accounts::{Accounts, RegistrationToken};
use hearth_config::Config;

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a random token and print it.
    Create {
        /// How many registrations it allows (unlimited if not given).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        uses: Option<u32>,
        /// Hours until it expires (never if not given).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
        expires_in_hours: Option<u32>,
    },
    /// List every token with its uses and expiry.
    List,
}

pub(crate) async fn run(
    config: &Config,
    accounts: &Accounts,
    command: TokenCommand,
) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            uses,
            expires_in_hours,
        } => {
            let expires_in =
                expires_in_hours.map(|hours| Duration::from_secs(u64::from(hours) * 3600));
            let token = accounts.create_registration_token(uses, expires_in).await?;
            // The token alone on stdout, so that scripts can capture it.
            println!("{}", token.token);
            eprintln!(
                "registration token: {} uses, expires {}",
                uses.map_or("unlimited".to_owned(), |n| n.to_string()),
                expiry(&token)
            );
            if !(config.registration.enabled && config.registration.token_required) {
                eprintln!(
                    "note: registration tokens only matter with [registration] enabled = true \
                     and token_required = true"
                );
            }
        }
        TokenCommand::List => {
            let tokens = accounts.registration_tokens().await?;
            if tokens.is_empty() {
                println!("no registration tokens");
                return Ok(());
            }
            let now = now_ms();
            let width = tokens
                .iter()
                .map(|t| t.token.len())
                .max()
                .unwrap_or(0)
                .max(5);
            println!(
                "{:width$}  USES          PENDING  EXPIRES               VALID",
                "TOKEN"
            );
            for token in &tokens {
                let uses = match token.uses_allowed {
                    Some(allowed) => format!("{}/{allowed}", token.completed),
                    None => format!("{}/unlimited", token.completed),
                };
                println!(
                    "{:width$}  {uses:<12}  {:<7}  {:<20}  {}",
                    token.token,
                    token.pending,
                    expiry(token),
                    if token.is_valid_at(now) { "yes" } else { "no" },
                );
            }
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn expiry(token: &RegistrationToken) -> String {
    token.expiry_ms.map_or("never".to_owned(), utc_minute)
}

/// `YYYY-MM-DD HH:MM UTC` for milliseconds since the Unix epoch (the civil-from-days algorithm
/// from Howard Hinnant's date library, so no date crate is needed for one column).
fn utc_minute(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::utc_minute;

    #[test]
    fn dates() {
        assert_eq!(utc_minute(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_minute(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc_minute(1_625_394_937_000), "2021-07-04 10:35 UTC");
        assert_eq!(utc_minute(4_102_444_799_000), "2099-12-31 23:59 UTC");
    }
}
