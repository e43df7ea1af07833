//! The GLib keyfile parser (`oxtree_repo::keyfile`) on untrusted text: a
//! repository's `config` copied from elsewhere, a `remotes.d/*.conf`, a
//! deployment's origin. Through `RepoConfig`, with the accessors the
//! repository uses, and directly.
//!
//! Must never panic; text `RepoConfig` agrees to write must parse back to
//! the same values (keys with no faithful keyfile form are refused, not
//! written); any parsed keyfile writes text that parses back to itself
//! (but for values ending in `\r`); a
//! string set escaped reads back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use oxtree_repo::keyfile::KeyFile;
use oxtree_repo::RepoConfig;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(kf) = KeyFile::parse(text) {
        let again = KeyFile::parse(&kf.to_text()).expect("written keyfile must parse");
        let groups: Vec<String> = kf.groups().map(str::to_owned).collect();
        // A raw value ending in `\r` (from `\r\r\n`) loses that `\r` when
        // written and read again, as with GLib; anything else reads back.
        if !groups
            .iter()
            .any(|g| kf.entries(g).any(|(_, v)| v.ends_with('\r')))
        {
            assert_eq!(again, kf);
        }
        for g in &groups {
            for (k, _) in kf.entries(g) {
                let _ = kf.get_string(g, k);
                let _ = kf.get_string_list(g, k);
            }
        }
        // Any string survives set_string/get_string, list items too (but
        // a leading \x0b or \x0c, which GLib has no escape for either).
        if !text.starts_with(['\x0b', '\x0c']) {
            let mut kf = kf;
            let want: Vec<&str> = text.split('\n').collect();
            kf.set_string("fuzz", "s", text);
            kf.set_string_list("fuzz", "l", &want);
            let back = KeyFile::parse(&kf.to_text()).expect("escaped values must parse");
            assert_eq!(back.get_string("fuzz", "s"), Some(Ok(text.to_string())));
            let items = back.get_string_list("fuzz", "l").unwrap().unwrap();
            assert_eq!(items, want);
        }
    }
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
    assert_eq!(again.sections().collect::<Vec<_>>(), sections);
});
