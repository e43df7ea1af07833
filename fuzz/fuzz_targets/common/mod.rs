//! Helpers shared by the metadata-carrying targets (commit, metadata).

use oxtree_object::{text, Metadata};

/// `text::print` of every value; must not panic.
pub fn print_all(md: &Metadata) -> Vec<String> {
    md.0.iter().map(|(_, v)| text::print(v)).collect()
}
