//! `RepoConfig::parse` on untrusted `config` text (a repository copied from
//! elsewhere), and the accessors the repository uses on it.
//!
//! Must never panic; text it agrees to write must parse back to the same
//! values (keys with no faithful keyfile form are refused, not written).
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_repo::RepoConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(cfg) = RepoConfig::parse(text) else {
        return;
    };
    let mode = cfg.get("core", "mode").map(str::to_owned);
    let _ = cfg.get_bool("core", "fsync", true);
    let sections: Vec<String> = cfg.sections().map(str::to_owned).collect();
    let Ok(text) = cfg.to_checked_text() else {
        return;
    };
    let again = RepoConfig::parse(&text).expect("checked config text must parse");
    assert_eq!(again.get("core", "mode").map(str::to_owned), mode);
    let _ = sections;
});
