//! Redaction for the snapshot tests (insta): the output only oxtree
//! prints (`admin status --json`, the package layering results) is
//! compared with the snapshots committed under tests/snapshots/, once
//! what differs between runs and machines is replaced by stable
//! placeholders. Included with `#[path]`.
//!
//! Updating the snapshots after an intended change of the output
//! (`cargo insta` is not needed):
//!
//! ```text
//! INSTA_UPDATE=always cargo test --test host --test layering
//! git diff tests/snapshots/
//! ```
//!
//! `INSTA_FORCE_PASS=1` runs the tests through a mismatch (it still
//! writes `.snap.new` files to look at, unless CI is set). With `CI` set
//! (CI runs `CI=true`), insta's default is `INSTA_UPDATE=no`: a mismatch
//! or a missing snapshot fails the test and nothing is written.

#![allow(dead_code)]

/// `text` with each 64-hex checksum replaced by `[csum-N]` (N counting
/// distinct checksums in order of first appearance, so that which ones
/// are equal still shows) and each `(from, to)` in `paths` replaced (the
/// scratch directory of a run, and the like).
pub fn redact(text: &str, paths: &[(&str, &str)]) -> String {
    let mut text = text.to_string();
    for (from, to) in paths {
        text = text.replace(from, to);
    }
    let mut seen: Vec<String> = Vec::new();
    let mut out = String::with_capacity(text.len());
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let run = b[i..]
            .iter()
            .take_while(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
            .count();
        let bounded = i == 0 || !b[i - 1].is_ascii_alphanumeric();
        if run == 64 && bounded {
            let csum = &text[i..i + 64];
            let n = match seen.iter().position(|s| s == csum) {
                Some(n) => n,
                None => {
                    seen.push(csum.to_string());
                    seen.len() - 1
                }
            };
            out.push_str(&format!("[csum-{n}]"));
            i += 64;
        } else {
            let step = run.max(1);
            let end = (i + step..=b.len())
                .find(|&e| text.is_char_boundary(e))
                .unwrap_or(b.len());
            out.push_str(&text[i..end]);
            i = end;
        }
    }
    out
}

/// `text` (layering's text output) with the Debian versions of its
/// `Added:`, `Removed:` and `Changed:` lines, the size of `Freed
/// objects:` (they follow the archive a fixture was composed from, not
/// oxtree) and durations (`built in 13.4s`) replaced.
pub fn redact_layering(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let w: Vec<&str> = line.split(' ').collect();
        let line = match w[..] {
            [kind @ ("Added:" | "Removed:"), name, _, arch] => {
                format!("{kind} {name} [version] {arch}")
            }
            ["Changed:", name, _, "->", _] => format!("Changed: {name} [version] -> [version]"),
            ["Freed", "objects:", ..] => "Freed objects: [size]".to_string(),
            [.., "in", t]
                if t.strip_suffix('s')
                    .is_some_and(|n| n.parse::<f64>().is_ok()) =>
            {
                format!("{} [duration]", &line[..line.len() - t.len()].trim_end())
            }
            _ => line.to_string(),
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// `v` with the string value of every object key in `keys` (anywhere in
/// it) replaced by `[key]`: for values that vary between machines, such
/// as the Debian package versions of a compose.
pub fn redact_keys(v: &mut serde_json::Value, keys: &[&str]) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if keys.contains(&k.as_str()) && x.is_string() {
                    *x = serde_json::Value::String(format!("[{k}]"));
                } else {
                    redact_keys(x, keys);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| redact_keys(x, keys)),
        _ => {}
    }
}
