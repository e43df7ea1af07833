//! `-T` / `--timestamp-check-from-rev`: a requested commit must not be
//! older than the one its ref points to now (or than a given commit).

use super::PullOptions;
use crate::error::{Result, TransportError};
use crate::remote::Remote;
use oxtree_object::Checksum;
use oxtree_repo::Repo;
use std::collections::HashMap;

/// For `-T`/`--timestamp-check-from-rev`: the floor of each requested
/// commit (see `State::ts_floor`).
pub(super) fn timestamp_floors(
    repo: &Repo,
    remote: &Remote,
    opts: &PullOptions,
    targets: &[(Option<String>, Checksum)],
) -> Result<HashMap<Checksum, (Checksum, u64)>> {
    let mut out = HashMap::new();
    if !opts.timestamp_check && opts.timestamp_check_from.is_none() {
        return Ok(out);
    }
    for (name, c) in targets {
        let current = match (&opts.timestamp_check_from, name) {
            (Some(from), _) => Some(*from),
            (None, Some(n)) => repo.read_ref(&ref_spec(remote, opts, n))?,
            (None, None) => None,
        };
        if let Some(cur) = current.filter(|cur| cur != c) {
            out.insert(*c, (cur, repo.load_commit(&cur)?.timestamp));
        }
    }
    Ok(out)
}

/// The local ref a pulled ref goes to (before collection mirrors).
fn ref_spec(remote: &Remote, opts: &PullOptions, name: &str) -> String {
    if opts.mirror {
        name.to_string()
    } else {
        format!("{}:{name}", remote.name)
    }
}

/// Refuse a commit `new` (timestamp `new_ts`) older than `current`
/// (timestamp `cur_ts`), in ostree's words.
pub(super) fn check_not_older(
    current: &Checksum,
    cur_ts: u64,
    new: &Checksum,
    new_ts: u64,
) -> Result<()> {
    if new_ts < cur_ts {
        let iso = |t: u64| {
            chrono::DateTime::from_timestamp(t as i64, 0)
                .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| t.to_string())
        };
        return Err(TransportError::bad(
            "pull",
            format!(
                "Upgrade target revision '{new}' with timestamp '{}' is chronologically older than current revision '{current}' with timestamp '{}'; use --allow-downgrade to permit",
                iso(new_ts),
                iso(cur_ts)
            ),
        ));
    }
    Ok(())
}
